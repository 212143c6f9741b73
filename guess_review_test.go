package licensing_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestReviewConcurrentGuessesPassTheLimiter (review3). Promise (http.go,
// HandlerConfig.OwnerRateLimit; SECURITY.md "failed authentications per
// address ... refused before the token is tried"): past the burst an
// address gets 429 before its credential is tried, "so tokens cannot be
// guessed faster".
//
// Reproduction: OwnerRateLimit 20 (burst 5); one address sends 40 requests
// with wrong tokens at once, to an Authenticator that takes a moment (as
// one backed by a database or an identity provider does; here it waits
// until the 40 have arrived or 2 s have passed).
//
// Observed: all 40 tokens are tried (40 Authenticate calls, 40 x 401), and
// the attacker can repeat this every 3 s (one refilled token lets a whole
// new wave through). Expected: at most the burst (5) tried, the rest 429.
//
// Root cause: http.go actor(): h.guesses.check(addr) only peeks at the
// bucket; the token is taken by h.guesses.allow(addr) after Authenticate
// returns, so every request in flight passes check; and allow on an empty
// bucket takes nothing (ratelimit.go take: no debt), so the failures of a
// wave are never charged.
func TestReviewConcurrentGuessesPassTheLimiter(t *testing.T) {
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
		Organizations: reviewOrgs{},
		Pepper:        []byte("0123456789abcdef0123456789abcdef-review3"),
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

type reviewOrgs struct{}

func (reviewOrgs) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	return licensing.Organization{}, licensing.ErrOrgNotFound
}
