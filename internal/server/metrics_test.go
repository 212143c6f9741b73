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

// TestMetricsCountExpiredKeys: a real key past its expiry is counted as
// expired (its answer says so to whoever holds it), and the owner's
// renewal and the first refusal are in the event log with the expiry.
func TestMetricsCountExpiredKeys(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", RateBurst: 1, TokenLifetime: time.Hour})
	id, key := p.create(t)
	status, _ := p.do(t, "PATCH", "/api/v1/licensing/keys/"+id, "token-owner-1", `{"expiresAt":"2026-01-01T00:00:00+00:00"}`)
	is.Equal(status, 200)
	s0 := p.scrape(t)
	status, body := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 401)
	is.True(strings.Contains(body, "License key has expired"))
	s1 := p.scrape(t)
	is.Equal(s1[`licensing_validations_total{outcome="expired"}`]-s0[`licensing_validations_total{outcome="expired"}`], 1.0)
	is.Equal(s1[`licensing_validations_total{outcome="revoked_or_unknown"}`], s0[`licensing_validations_total{outcome="revoked_or_unknown"}`])
	logs := p.logs.String()
	is.True(strings.Contains(logs, "type=key.renewed") && strings.Contains(logs, "expires_at=2026-01-01T00:00:00")) // the owner's renewal, with the time
	for i := 0; i < 1000 && !strings.Contains(p.logs.String(), "type=key.expired"); i++ {
		time.Sleep(10 * time.Millisecond) // the first refusal's event is logged off the request path
	}
	is.True(strings.Contains(p.logs.String(), "type=key.expired"))
	is.True(!strings.Contains(p.logs.String(), key)) // never the key
}
