package licensing_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/matryer/is"
)

// TestTokenGuessingIsLimited: failed authentications on owner routes are
// counted per client address at the owner rate; past the burst, the address
// gets 429 with Retry-After before any token is tried, the right token
// included, while another address is not affected. Time refills the bucket.
func TestTokenGuessingIsLimited(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(h *licensing.HandlerConfig) { h.OwnerRateLimit = 20 }) // burst 5
	for i := range 5 {
		r := e.do(t, "GET", keysPath, "guess-"+strconv.Itoa(i), "")
		is.Equal(r.status, 401) // tried
	}
	r := e.do(t, "GET", keysPath, "guess-5", "")
	is.Equal(r.status, 429)
	is.Equal(r.header.Get("Retry-After"), "3") // 20 a minute: a token every 3 s
	r = e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 429) // refused before the credential is tried
	r = e.do(t, "GET", keysPath, "t-owner", "", "X-Forwarded-For", "203.0.113.9")
	is.Equal(r.status, 429) // a header does not make another address (no trusted proxy)
	e.clock.Add(3e9)
	r = e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 200) // a refilled token: the owner gets in
	for range 20 {
		r = e.do(t, "GET", keysPath, "t-owner", "")
		if r.status != 200 {
			break
		}
	}
	is.Equal(r.status, 429) // successes count against the user's own limit, as before
}

// TestTokenGuessingOffWithTheOwnerLimit: OwnerRateLimit Unlimited turns the count
// of failures off too.
func TestTokenGuessingOffWithTheOwnerLimit(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(h *licensing.HandlerConfig) { h.OwnerRateLimit = licensing.Unlimited })
	for i := range 50 {
		is.Equal(e.do(t, "GET", keysPath, "guess-"+strconv.Itoa(i), "").status, 401)
	}
	is.Equal(e.do(t, "GET", keysPath, "t-owner", "").status, 200)
}

// TestConcurrentGuessesAreLimited: one address sends 40 requests with wrong
// tokens at once, to an Authenticator that takes a moment (as one backed by
// a database or an identity provider does); each attempt takes a token
// before its credential is tried, so at most the burst (5) are tried and
// the rest get 429.
func TestConcurrentGuessesAreLimited(t *testing.T) {
	is := is.New(t)
	const wave = 40
	var calls atomic.Int32
	arrived := make(chan struct{})
	var once sync.Once
	auth := licensing.AuthenticatorFunc(func(r *http.Request) (licensing.Actor, error) {
		if calls.Add(1) == wave {
			once.Do(func() { close(arrived) })
		}
		select { // a slow credential check: a database, an IdP
		case <-arrived:
		case <-time.After(2 * time.Second):
		}
		return licensing.Actor{}, licensing.ErrUnauthorized
	})
	svc, err := licensing.New(licensing.Config{
		Store:         licensing.NewMemoryStore(),
		Organizations: eligibleOrgs,
		Pepper:        testPepper,
		Logger:        slog.New(slog.DiscardHandler),
		Policy:        licensing.Policy{Issuer: "licensing.test"},
	})
	is.NoErr(err)
	defer svc.Close(context.Background())
	srv := httptest.NewServer(licensing.NewHandler(svc, auth, licensing.HandlerConfig{OwnerRateLimit: 20}))
	defer srv.Close()

	var wg sync.WaitGroup
	var unauthorized, limited atomic.Int32
	for range wave {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", srv.URL+keysPath, nil)
			req.Header.Set("Authorization", "Bearer guess")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			res.Body.Close()
			switch res.StatusCode {
			case 401:
				unauthorized.Add(1)
			case 429:
				limited.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("Authenticate calls %d, 401 %d, 429 %d", calls.Load(), unauthorized.Load(), limited.Load())
	is.True(calls.Load() <= 5) // at most the burst of guesses is tried
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
		Organizations: eligibleOrgs,
		Pepper:        testPepper,
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

func TestResolveActor(t *testing.T) {
	tests := []struct {
		name, header string
		orgs         []string
		want         string
		err          error
	}{
		{"default is the first", "", []string{"o1", "o2"}, "o1", nil},
		{"header picks a member organization", "o2", []string{"o1", "o2"}, "o2", nil},
		{"header names another organization", "o3", []string{"o1", "o2"}, "", licensing.ErrOrgNotFound},
		{"no organization", "", nil, "", licensing.ErrOrgNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header.Set(licensing.OrganizationHeader, tc.header)
			}
			a, err := licensing.ResolveActor(r, "u", tc.orgs)
			is.Equal(err, tc.err)
			is.Equal(a.OrganizationID, tc.want)
		})
	}
}

func TestUnauthorizedCarriesBearerChallenge(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	for _, tc := range []struct{ method, path string }{
		{"POST", "/api/v1/licensing/keys"},
		{"GET", "/api/v1/licensing/keys"},
		{"DELETE", "/api/v1/licensing/keys/019c8a12-4567-7abc-def0-123456789abc"},
		{"POST", "/api/v1/licensing/keys/019c8a12-4567-7abc-def0-123456789abc/jwt"},
	} {
		r := e.do(t, tc.method, tc.path, "", "")
		is.Equal(r.status, 401)
		is.Equal(r.header.Get("WWW-Authenticate"), `Bearer realm="licensing"`) // RFC 6750
	}
	r := e.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"x"}`)
	is.Equal(r.status, 401)
	is.Equal(r.header.Get("WWW-Authenticate"), "") // the key is no bearer credential
}
