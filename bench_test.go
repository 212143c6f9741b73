package licensing_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

// benchService returns a service on a memory store holding n keys of one
// organization, and n of the full keys.
func benchService(b *testing.B, n int) (*licensing.Service, []string) {
	svc, all := benchServiceKeys(b, n)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = all.key(i)
	}
	return svc, keys
}

// benchKeys are full keys kept end to end in one string, so that the
// benchmark's own copy of a million keys is one object for the collector,
// not a million.
type benchKeys string

func (ks benchKeys) key(i int) string { return string(ks[i*64 : (i+1)*64]) }

// benchServiceKeys is benchService with the keys in one string.
func benchServiceKeys(b *testing.B, n int) (*licensing.Service, benchKeys) {
	b.Helper()
	orgs := staticOrgs{"org-1": {ID: "org-1", Name: "Acme", OwnerID: "user-1", Plan: "business", Active: true,
		Features: map[string]any{"selfHostingLicense": true, "maxCompanies": 10.0}}}
	svc, err := licensing.New(licensing.Config{Store: licensing.NewMemoryStore(), Organizations: orgs,
		Pepper: testPepper, Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.test"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { svc.Close(context.Background()) })
	actor := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	var keys strings.Builder
	keys.Grow(64 * n)
	for i := 0; i < n; i++ {
		c, err := svc.CreateKey(context.Background(), actor, licensing.CreateKeyInput{})
		if err != nil {
			b.Fatal(err)
		}
		keys.WriteString(c.LicenseKey)
	}
	// Collect the garbage of the set-up now, so the timed loop pays only
	// for the garbage it makes (and for marking the live keys).
	runtime.GC()
	return svc, benchKeys(keys.String())
}

func BenchmarkValidateKey(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			svc, keys := benchServiceKeys(b, n)
			ctx := context.Background()
			metrics := map[string]float64{"companyCount": 3, "userCount": 2}
			// Each key validated once before the clock runs: its first
			// validation (activation, its key.activated event, its first
			// metrics) happens once in its life, not once per validation,
			// and would otherwise be a third of the validations timed at a
			// million keys but none of those at a thousand.
			for i := 0; i < n; i++ {
				if _, err := svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: keys.key(i), Metrics: metrics}); err != nil {
					b.Fatal(err)
				}
			}
			if err := svc.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				_, err := svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: keys.key(i % n), Metrics: metrics})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkBaselineHMAC is the floor under ValidateKey: one HMAC-SHA-256 of a key.
func BenchmarkBaselineHMAC(b *testing.B) {
	key, _ := wire.GenerateKey(nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m := hmac.New(sha256.New, testPepper)
		io.WriteString(m, key)
		m.Sum(nil)
	}
}

// BenchmarkValidateHTTP measures the validate route over loopback HTTP with
// keep-alive connections; BenchmarkBaselineHTTP is net/http itself serving a
// handler that reads the same body and writes a fixed answer of like size.
func BenchmarkValidateHTTP(b *testing.B) {
	h, keys := validateHandler(b)
	benchHTTP(b, h, keys)
}

func BenchmarkBaselineHTTP(b *testing.B) {
	h, keys := baselineHandler()
	benchHTTP(b, h, keys)
}

// validateHandler is the real validate route on a service with 1,000 keys.
// Every request comes from one address, so the rate limiter is off: this
// measures validation, not 429s.
func validateHandler(b *testing.B) (http.Handler, []string) {
	svc, keys := benchService(b, 1_000)
	return licensing.NewHandler(svc, licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
		return licensing.Actor{}, licensing.ErrUnauthorized
	}), licensing.HandlerConfig{RateLimit: licensing.Unlimited}), keys
}

// baselineHandler reads the body and writes a fixed answer of like size,
// with 1,000 keys to send it.
func baselineHandler() (http.Handler, []string) {
	answer := []byte(`{"valid":true,"plan":"business","features":{"maxCompanies":10,"selfHostingLicense":true},"organizationId":"org-1","organizationName":"Acme","violations":[]}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	keys := make([]string, 1000)
	for i := range keys {
		keys[i], _ = wire.GenerateKey(nil)
	}
	return h, keys
}

func benchHTTP(b *testing.B, h http.Handler, keys []string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			body := `{"licenseKey":"` + keys[i%len(keys)] + `","metrics":{"companyCount":3}}`
			res, err := client.Post(srv.URL+"/api/v1/licensing/validate", "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
	})
}

// BenchmarkValidateHandler is the validate route without the network: the
// handler serving a recorded request, so allocs/op counts what the library
// allocates per validation (the request and recorder are made outside the
// timed part where they can be; httptest's own allocations are measured by
// BenchmarkBaselineHandler).
func BenchmarkValidateHandler(b *testing.B) {
	h, keys := validateHandler(b)
	benchHandler(b, h, keys)
}

// BenchmarkBaselineHandler is the floor under BenchmarkValidateHandler: a
// handler that reads the body and writes a fixed answer.
func BenchmarkBaselineHandler(b *testing.B) {
	h, keys := baselineHandler()
	benchHandler(b, h, keys)
}

func benchHandler(b *testing.B, h http.Handler, keys []string) {
	bodies := make([]string, len(keys))
	for i, k := range keys {
		bodies[i] = `{"licenseKey":"` + k + `","instanceName":"load-1","instanceUrl":"https://load-1.example"}`
	}
	rd := strings.NewReader("")
	req := httptest.NewRequest("POST", "/api/v1/licensing/validate", rd)
	req.Header.Set("Content-Type", "application/json")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rd.Reset(bodies[i%len(bodies)])
		req.Body = io.NopCloser(rd)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// cpuTime is the user and system CPU time the process has used: every
// goroutine's, the collector's and the recorder's included, and not
// inflated by other processes waiting for the same cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCollectStore is the collector's cycle (runtime.GC) with a
// Service and its memory store holding n keys made through the Service
// (keys and their key.created events): what marking the store costs at
// every cycle of a running server.
func BenchmarkCollectStore(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			svc, keys := benchServiceKeys(b, n)
			for b.Loop() {
				runtime.GC()
			}
			runtime.KeepAlive(svc)
			runtime.KeepAlive(keys)
		})
	}
}
