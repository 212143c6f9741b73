package licensing

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/matryer/is"
)

type nopObserver struct{}

func (nopObserver) Request(string, int, time.Duration) {}
func (nopObserver) Validation(Outcome)                 {}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

type oneOrg struct{}

func (oneOrg) Organization(ctx context.Context, id string) (Organization, error) {
	return Organization{}, ErrOrgNotFound
}

type noAuth struct{}

func (noAuth) Authenticate(*http.Request) (Actor, error) { return Actor{}, ErrUnauthorized }

// TestObserverAllocs: observing a request allocates nothing beyond what
// serving it allocates anyway.
func TestObserverAllocs(t *testing.T) {
	is := is.New(t)
	allocs := func(obs Observer) float64 {
		svc, err := New(Config{Store: NewMemoryStore(), Organizations: oneOrg{}, Pepper: bytes.Repeat([]byte("p"), 32),
			Policy: Policy{Issuer: "x"}, Observer: obs})
		is.NoErr(err)
		defer svc.Close(context.Background())
		h := NewHandler(svc, noAuth{}, HandlerConfig{})
		r := httptest.NewRequest("GET", "/api/v1/licensing/public-keys", nil)
		w := &discardWriter{h: http.Header{}}
		return testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) })
	}
	without, with := allocs(nil), allocs(nopObserver{})
	is.Equal(with, without) // the Observer adds no allocation
}

// BenchmarkValidateObserved serves the validate route in process, without
// and with an Observer, to show what observing adds.
func BenchmarkValidateObserved(b *testing.B) {
	for _, tc := range []struct {
		name string
		obs  Observer
	}{{"none", nil}, {"nop", nopObserver{}}} {
		b.Run(tc.name, func(b *testing.B) {
			orgs := staticOrg{ID: "org-1", OwnerID: "u", Plan: "business", Active: true, Features: map[string]any{}}
			svc, err := New(Config{Store: NewMemoryStore(), Organizations: orgs, Pepper: bytes.Repeat([]byte("p"), 32),
				Policy: Policy{Issuer: "x"}, Observer: tc.obs})
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close(context.Background())
			c, err := svc.CreateKey(context.Background(), Actor{UserID: "u", OrganizationID: "org-1"}, CreateKeyInput{})
			if err != nil {
				b.Fatal(err)
			}
			h := NewHandler(svc, noAuth{}, HandlerConfig{})
			body := []byte(`{"licenseKey":"` + c.LicenseKey + `"}`)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/api/v1/licensing/validate", bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				h.ServeHTTP(w, r)
			}
		})
	}
}

type staticOrg Organization

func (o staticOrg) Organization(ctx context.Context, id string) (Organization, error) {
	if id != o.ID {
		return Organization{}, ErrOrgNotFound
	}
	return Organization(o), nil
}
