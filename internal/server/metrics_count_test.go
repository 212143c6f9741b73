package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// requestsTotal sums licensing_http_requests_total over every route and code.
func requestsTotal(series map[string]float64) float64 {
	n := 0.0
	for name, v := range series {
		if strings.HasPrefix(name, "licensing_http_requests_total{") {
			n += v
		}
	}
	return n
}

// TestMetricsCountEveryRequest: licensing_http_requests_total counts every
// answer: the owner page's files under their paths, and any 404 outside
// the API as "unmatched" (one series, whatever the paths).
func TestMetricsCountEveryRequest(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", RateBurst: 1, TokenLifetime: time.Hour})
	before := requestsTotal(p.scrape(t)) // this scrape counts itself once answered
	for _, path := range []string{"/", "/owner.js", "/owner.css", "/nope", "/wp-login.php"} {
		p.do(t, "GET", path, "", "")
	}
	series := p.scrape(t)
	after := requestsTotal(series)
	is.Equal(after-before, float64(1+5)) // the first scrape and the 5 requests
	unmatched := 0
	for name := range series {
		if strings.Contains(name, `route="unmatched"`) && strings.HasPrefix(name, "licensing_http_requests_total{") {
			unmatched++
		}
	}
	is.Equal(unmatched, 1) // /nope and /wp-login.php: one series
}
