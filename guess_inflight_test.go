package licensing_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

type inFlightOrgs struct{}

func (inFlightOrgs) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	return licensing.Organization{ID: id, OwnerID: "user-" + strings.TrimPrefix(id, "org-"), Plan: "p", Active: true,
		Features: map[string]any{"selfHostingLicense": true}}, nil
}

// TestAuthenticationsInFlightPerAddress: every owner-route attempt takes an
// address token before its credential is tried (so concurrent guesses are
// bounded) and a success gives it back, so one address has at most a
// burst's worth of authentications in flight, valid ones included. Twenty
// owners behind one address, with a slow authenticator (an identity
// provider): the burst (5) get in, the rest 429; the same twenty through a
// trusted proxy that names each client get in, as HandlerConfig documents.
func TestAuthenticationsInFlightPerAddress(t *testing.T) {
	for _, proxied := range []bool{false, true} {
		t.Run(map[bool]string{false: "one address", true: "through a trusted proxy"}[proxied], func(t *testing.T) { authenticationsInFlight(t, proxied) })
	}
}

func authenticationsInFlight(t *testing.T, proxied bool) {
	is := is.New(t)
	const owners = 20
	var calls atomic.Int32
	arrived := make(chan struct{})
	var once sync.Once
	auth := licensing.AuthenticatorFunc(func(r *http.Request) (licensing.Actor, error) {
		if calls.Add(1) == owners {
			once.Do(func() { close(arrived) })
		}
		select { // a slow, valid credential check
		case <-arrived:
		case <-time.After(time.Second):
		}
		u := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer tok-")
		return licensing.Actor{UserID: "user-" + u, OrganizationID: "org-" + u}, nil
	})
	svc, err := licensing.New(licensing.Config{
		Store:         licensing.NewMemoryStore(),
		Organizations: inFlightOrgs{},
		Pepper:        []byte("0123456789abcdef0123456789abcdef-review4"),
		Logger:        slog.New(slog.DiscardHandler),
		Policy:        licensing.Policy{Issuer: "licensing.test"},
	})
	is.NoErr(err)
	defer svc.Close(context.Background())
	hc := licensing.HandlerConfig{OwnerRateLimit: 20} // burst 5
	if proxied {
		hc.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	srv := httptest.NewServer(licensing.NewHandler(svc, auth, hc))
	defer srv.Close()

	var wg sync.WaitGroup
	codes := make([]int, owners)
	for i := range owners {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", srv.URL+keysPath, nil)
			req.Header.Set("Authorization", fmt.Sprintf("Bearer tok-%d", i))
			if proxied {
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			res.Body.Close()
			codes[i] = res.StatusCode
		})
	}
	wg.Wait()
	limited := 0
	for _, c := range codes {
		if c == 429 {
			limited++
		}
	}
	if proxied {
		is.Equal(limited, 0) // each owner from its own address
		return
	}
	is.True(limited >= owners-5) // at most the burst in flight at once
	for i := range 3 {           // one after the other, every owner gets in: successes give their token back
		req, _ := http.NewRequest("GET", srv.URL+keysPath, nil)
		req.Header.Set("Authorization", fmt.Sprintf("Bearer tok-%d", i))
		res, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, 200)
	}
}
