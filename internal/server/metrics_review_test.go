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

// Review (review5): README, Metrics: licensing_http_requests_total counts
// "requests answered, by route pattern ... `unmatched` for 404". The owner
// page ("/", "/owner.js", "/owner.css") and every 404 outside the API prefix
// are answered but never counted: the page handler is mounted without
// m.metrics.observe (internal/server/server.go, mux.Handle("/", ownerpage...)),
// so a scraper sees neither the page's traffic nor a flood of 404s.
func TestReviewMetricsCountEveryRequest(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", RateBurst: 1, TokenLifetime: time.Hour})
	before := requestsTotal(p.scrape(t)) // this scrape counts itself once answered
	for _, path := range []string{"/", "/owner.js", "/owner.css", "/nope", "/wp-login.php"} {
		p.do(t, "GET", path, "", "")
	}
	after := requestsTotal(p.scrape(t))
	is.Equal(after-before, float64(1+5)) // the first scrape and the 5 requests
}
