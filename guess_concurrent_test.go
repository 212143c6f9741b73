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
		Organizations: guessOrgs{},
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

type guessOrgs struct{}

func (guessOrgs) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	return licensing.Organization{}, licensing.ErrOrgNotFound
}
