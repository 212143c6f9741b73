package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/server"
	"github.com/licensekit/licensing/internal/wire"
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
	unknownKey, err := wire.GenerateKey(nil)
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

// waitUnlocked blocks until no server holds the data directory's lock.
func waitUnlocked(t *testing.T, data string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(data, ".lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// TestKeysGaugeAfterReload: licensing_keys counts the keys of the
// configured organizations; a reload that adds an organization back counts
// its keys again, so revoking them never takes the gauge below zero.
func TestKeysGaugeAfterReload(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t) // org-1 and org-2 (owner token-owner-3)
	m1 := &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "file", RateBurst: 1, TokenLifetime: time.Hour}
	p := runMain(t, m1)
	var ids []string
	for range 2 {
		status, raw := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-3", `{}`)
		is.Equal(status, 201)
		ids = append(ids, field(raw, "id"))
	}
	p.cancel()
	waitUnlocked(t, data)

	full, err := os.ReadFile(cfgPath)
	is.NoErr(err)
	i := strings.Index(string(full), `,
    {"id": "org-2"`)
	j := strings.Index(string(full), `"active": true}
  ],`)
	is.True(i > 0 && j > i)
	cut := string(full[:i]) + string(full[j+len(`"active": true}`):]) // org-2 left out
	token3 := `,
             {"sha256": "` + sha("token-owner-3") + `", "userId": "user-3"}`
	is.True(strings.Contains(cut, token3))
	is.NoErr(os.WriteFile(cfgPath, []byte(strings.Replace(cut, token3, "", 1)), 0o600)) // and its owner's token: a start refuses a token that opens nothing
	p = runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "file", RateBurst: 1, TokenLifetime: time.Hour})
	is.NoErr(os.WriteFile(cfgPath, full, 0o600)) // org-2 back
	p.reload <- syscall.SIGHUP
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.logs.String(), "configuration reloaded"); {
		if time.Now().After(deadline) {
			t.Fatalf("no reload:\n%s", p.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range ids {
		status, _ := p.do(t, "DELETE", "/api/v1/licensing/keys/"+id, "token-owner-3", "")
		is.Equal(status, 200)
	}
	s := p.scrape(t)
	is.True(s[`licensing_keys{state="active"}`] >= 0) // a count of keys is never negative
	is.Equal(s[`licensing_keys{state="revoked"}`], float64(2))
}

// TestMetrics drives requests and checks that the counters, histograms and
// gauges of /metrics move by what was done, and that promtool accepts the
// exposition.
func TestMetrics(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	m := &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "file", RateLimit: 0, RateBurst: 1,
		TokenLifetime: time.Hour}
	p := runMain(t, m)
	existingID, _ := p.create(t) // present at the first scrape

	before := p.scrape(t)
	is.Equal(before[`licensing_keys{state="active"}`], 1.0)
	_, key := p.create(t)
	revokedID, revokedKey := p.create(t)
	status, _ := p.do(t, "DELETE", "/api/v1/licensing/keys/"+revokedID, "token-owner-1", "")
	is.Equal(status, 200)
	status, _ = p.do(t, "DELETE", "/api/v1/licensing/keys/"+revokedID, "token-owner-1", "")
	is.Equal(status, 200) // revoking twice counts once
	for _, body := range []string{`{"licenseKey":"` + key + `"}`, `{"licenseKey":"` + key + `"}`,
		`{"licenseKey":"` + revokedKey + `"}`, `{"licenseKey":"lk_nothex"}`, `{"licenseKey":""}`} {
		p.do(t, "POST", "/api/v1/licensing/validate", "", body)
	}
	p.do(t, "GET", "/api/v1/licensing/keys/"+existingID, "", "") // 405
	p.do(t, "GET", "/healthz", "", "")
	time.Sleep(1500 * time.Millisecond) // let the batch of validation records be written
	after := p.scrape(t)

	delta := func(series string) float64 { return after[series] - before[series] }
	cases := []struct {
		series string
		want   float64
	}{
		{`licensing_http_requests_total{route="POST /keys",code="201"}`, 2},
		{`licensing_http_requests_total{route="DELETE /keys/{id}",code="200"}`, 2},
		{`licensing_http_requests_total{route="POST /validate",code="200"}`, 2},
		{`licensing_http_requests_total{route="POST /validate",code="401"}`, 2},
		{`licensing_http_requests_total{route="POST /validate",code="400"}`, 1},
		{`licensing_http_requests_total{route="/keys/{id}",code="405"}`, 1},
		{`licensing_http_requests_total{route="GET /healthz",code="200"}`, 1},
		{`licensing_http_requests_total{route="GET /metrics",code="200"}`, 1},
		{`licensing_http_request_duration_seconds_count{route="POST /validate"}`, 5},
		{`licensing_http_request_duration_seconds_bucket{route="POST /validate",le="+Inf"}`, 5},
		{`licensing_validations_total{outcome="valid"}`, 2},
		{`licensing_validations_total{outcome="revoked_or_unknown"}`, 1},
		{`licensing_validations_total{outcome="malformed"}`, 1},
		{`licensing_validations_total{outcome="invalid_input"}`, 1},
		{`licensing_store_write_duration_seconds_count{op="create_key"}`, 2},
		{`licensing_store_write_duration_seconds_count{op="revoke_key"}`, 1}, // the second revoke does not write
		{`licensing_store_write_duration_seconds_count{op="record_validations"}`, 1},
		{`licensing_store_write_errors_total{op="create_key"}`, 0},
		{`licensing_keys{state="active"}`, 1},
		{`licensing_keys{state="revoked"}`, 1},
		{`licensing_webhook_deliveries_total{outcome="success"}`, 0}, // no webhooks configured: exposed, at 0
		{`licensing_webhook_deliveries_total{outcome="retry"}`, 0},
		{`licensing_webhook_deliveries_total{outcome="failed"}`, 0},
		{`licensing_webhook_queue_depth`, 0},
		{`licensing_webhook_oldest_undelivered_seconds`, 0},
		{`licensing_events_dropped_total`, 0}, // every event reached the log
	}
	for _, tc := range cases {
		t.Run(tc.series, func(t *testing.T) {
			is := is.New(t)
			_, ok := after[tc.series]
			is.True(ok)                         // the series is exposed
			is.Equal(delta(tc.series), tc.want) // moved by what the test did
		})
	}
	for _, split := range []string{`licensing_validations_total{outcome="revoked"}`, `licensing_validations_total{outcome="unknown"}`} {
		_, ok := after[split]
		is.True(!ok) // merged into revoked_or_unknown: the public listener does not tell them apart
	}
	is.Equal(after["licensing_store_failed"], 0.0)
	is.True(after["go_goroutines"] > 0)
	is.True(after["go_memstats_heap_alloc_bytes"] > 0)
	is.True(after["process_start_time_seconds"] > 1.7e9)
	is.True(after[`licensing_http_request_duration_seconds_sum{route="POST /keys"}`] > 0)
	if _, err := os.Stat("/proc/self/fd"); err == nil {
		is.True(after["process_open_fds"] > 3)
	}
	_, raw := p.do(t, "GET", "/metrics", "", "")
	is.True(!strings.Contains(raw, key) && !strings.Contains(raw, key[:16])) // no key in the metrics
	needTool(t, "promtool", "prometheus")                                    // the exposition is linted: skipped without promtool
	promtool(t, raw)
}
