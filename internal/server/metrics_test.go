package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// TestMetricsDoNotTellRevokedFromUnknown: /metrics is on the public
// listener, so nothing in it may tell apart what the validate answer does
// not. An unknown key and a revoked key are validated in turn, with a
// scrape before, between and after: every licensing_ series but the
// latency histograms moves by exactly the same amount for both.
func TestMetricsDoNotTellRevokedFromUnknown(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", RateBurst: 1, TokenLifetime: time.Hour})
	id, revokedKey := p.create(t)
	status, _ := p.do(t, "DELETE", "/api/v1/licensing/keys/"+id, "token-owner-1", "")
	is.Equal(status, 200)
	unknownKey, err := licensing.GenerateKey(nil)
	is.NoErr(err)

	validate := func(key string) string {
		status, body := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
		is.Equal(status, 401)
		return body
	}
	s0 := p.scrape(t)
	unknownAnswer := validate(unknownKey)
	s1 := p.scrape(t)
	revokedAnswer := validate(revokedKey)
	s2 := p.scrape(t)
	is.Equal(unknownAnswer, revokedAnswer) // the answer does not tell them apart...

	compared := 0
	for series := range s2 {
		if !strings.HasPrefix(series, "licensing_") || strings.Contains(series, "_duration_seconds") {
			continue // the runtime's and the latency histograms' series move on their own
		}
		compared++
		if d1, d2 := s1[series]-s0[series], s2[series]-s1[series]; d1 != d2 {
			t.Errorf("%s moved by %v for an unknown key and by %v for a revoked one", series, d1, d2) // ...nor may /metrics
		}
	}
	for series := range s1 {
		if _, ok := s2[series]; !ok && strings.HasPrefix(series, "licensing_") {
			t.Errorf("%s is gone after the revoked key", series)
		}
	}
	is.True(compared > 10)
	is.Equal(s2[`licensing_validations_total{outcome="revoked_or_unknown"}`], 2.0)
}
