package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/client"
)

// Promise (checkToken, 81a50f9): "A damaged or edited cache (cacheErr)
// that no fresh list replaced is reported". refreshRevocations returns nil
// for a signed 429 ("a signed refusal leaves the list as it was"), and
// checkToken treats refreshErr == nil as "a fresh list replaced it": the
// edited cache's lost revocation list is not reported. An instance owner
// can use it: get the revocations route rate-limited (any request from its
// address), edit the cache (the list naming the revoked token is dropped),
// and the revoked token checks valid with no error at all.
// Root cause: client/token.go checkToken (`refreshErr != nil` as the test
// for "no fresh list"), refreshRevocations returning nil on non-200.
func TestEditedCacheReportedDespiteSignedRefusal(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	id, _ := w.key(t)
	tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
	is.NoErr(err)
	cache := filepath.Join(t.TempDir(), "license.json")
	online := w.client(t, tok.JWT, cache)
	_, err = online.Check(context.Background())
	is.NoErr(err)
	is.NoErr(w.svc.RevokeKey(context.Background(), w.owner, id))
	_, err = online.Check(context.Background())
	is.True(errors.Is(err, client.ErrRevoked)) // the cache now holds a list naming the token

	// edit the cache: the list fails its signature
	b, err := os.ReadFile(cache)
	is.NoErr(err)
	var doc map[string]any
	is.NoErr(json.Unmarshal(b, &doc))
	doc["revocations"].(map[string]any)["date"] = "Mon, 01 Jan 2001 00:00:00 GMT"
	edited, err := json.Marshal(doc)
	is.NoErr(err)
	is.NoErr(os.WriteFile(cache, edited, 0o600))

	// the same service behind a rate limit of 1 a minute, already spent by
	// one request from this address
	limited := httptest.NewServer(licensing.NewHandler(w.svc, licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
		return licensing.Actor{}, licensing.ErrUnauthorized
	}), licensing.HandlerConfig{RateLimit: 1, RateBurst: 1}))
	defer limited.Close()
	res, err := http.Get(limited.URL + "/api/v1/licensing/revocations?org=org-1")
	is.NoErr(err)
	res.Body.Close()

	c := w.client(t, tok.JWT, cache, func(cfg *client.Config) { cfg.ServerURL = limited.URL })
	lic, err := c.Check(context.Background())
	t.Logf("valid=%v reason=%v err=%v warning=%v", lic.Valid, lic.Reason, err, lic.Warning)
	is.NoErr(err)                                           // the token holds,
	is.True(errors.Is(lic.Warning, client.ErrCacheInvalid)) // but the edited cache (its list lost, no fresh one) must be reported
}

// An offline token with a ServerURL is accepted for RevocationListMaxAge
// after its newest signed revocation list (or its iat, before the first):
// deleting the cache file, which erases the lists and a revocation learnt
// from them, brings a revoked token back for that long at most.
func TestRevocationListMaxAge(t *testing.T) {
	w := newWorld(t)
	t0 := w.clock.Now() // the tokens' iat
	id, _ := w.key(t)
	tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	revokedID, _ := w.key(t)
	revoked, err := w.svc.IssueToken(context.Background(), w.owner, revokedID, licensing.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w.clock.Add(24 * time.Hour) // a day later, online once: the lists signed then are kept
	if _, err := w.client(t, tok.JWT, filepath.Join(dir, "kept.json")).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.RevokeKey(context.Background(), w.owner, revokedID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.client(t, revoked.JWT, filepath.Join(dir, "revoked.json")).Check(context.Background()); !errors.Is(err, client.ErrRevoked) {
		t.Fatalf("the revocation is not learnt: %v", err)
	}
	w.srv.Close() // from now on the server cannot be reached

	day := 24 * time.Hour
	tests := []struct {
		name   string
		jwt    string
		cache  string        // "" for a deleted cache file
		at     time.Duration // after t0
		mod    func(*client.Config)
		valid  bool
		reason client.Reason
		says   string
	}{
		{"kept list 29 days old", tok.JWT, "kept.json", 30 * day, nil, true, client.ReasonValid, ""},
		{"kept list 31 days old", tok.JWT, "kept.json", 32 * day, nil, false, client.ReasonRevocationListStale, "its newest revocation list was signed at " + t0.Add(day).Format(time.RFC3339) + ", 744h0m0s ago, more than Config.RevocationListMaxAge (720h0m0s)"},
		{"the revocation kept", revoked.JWT, "revoked.json", 10 * day, nil, false, client.ReasonTokenRevoked, ""},
		{"cache deleted, issued 29 days ago", tok.JWT, "", 29 * day, nil, true, client.ReasonValid, ""},
		{"cache deleted, issued 31 days ago", tok.JWT, "", 31 * day, nil, false, client.ReasonRevocationListStale, "the token was issued at " + t0.Format(time.RFC3339)},
		{"cache deleted: a revoked token within the bound (the limit)", revoked.JWT, "", 10 * day, nil, true, client.ReasonValid, ""},
		{"cache deleted: a revoked token beyond the bound", revoked.JWT, "", 31 * day, nil, false, client.ReasonRevocationListStale, "reach the license server at http"},
		{"a longer bound", tok.JWT, "", 31 * day, func(c *client.Config) { c.RevocationListMaxAge = 60 * day }, true, client.ReasonValid, ""},
		{"no bound", tok.JWT, "", 300 * day, func(c *client.Config) { c.RevocationListMaxAge = client.NoRevocationListMaxAge }, true, client.ReasonValid, ""},
		{"air-gapped: exp only", tok.JWT, "", 300 * day, func(c *client.Config) { c.ServerURL = "" }, true, client.ReasonValid, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			cache := filepath.Join(t.TempDir(), "deleted.json")
			if tc.cache != "" {
				b, err := os.ReadFile(filepath.Join(dir, tc.cache))
				is.NoErr(err)
				cache = filepath.Join(t.TempDir(), tc.cache)
				is.NoErr(os.WriteFile(cache, b, 0o600))
			}
			now := &clock{t: t0.Add(tc.at)}
			c := w.client(t, tc.jwt, cache, func(cfg *client.Config) {
				cfg.Now, cfg.Logger = now.Now, slog.New(slog.DiscardHandler)
				if tc.mod != nil {
					tc.mod(cfg)
				}
			})
			lic, err := c.Check(context.Background())
			is.Equal(lic.Valid, tc.valid)
			is.Equal(err == nil, tc.valid)
			is.Equal(lic.Reason, tc.reason)
			if tc.reason == client.ReasonRevocationListStale {
				is.True(errors.Is(err, client.ErrRevocationListStale))
				is.True(errors.Is(err, client.ErrUnreachable)) // and why no fresh list came
				is.True(strings.Contains(err.Error(), tc.says))
				is.Equal(lic.Source, client.SourceFallback)
			}
		})
	}
}

// A revocation list fetched by this very check is fresh, whatever the local
// clock says: a clock ahead of the server's by more than
// RevocationListMaxAge (a machine whose clock holds local time as UTC,
// with a bound of an hour) must not make the token stale while the server
// answers.
func TestRevocationListFetchedNowIsFresh(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	id, _ := w.key(t)
	tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
	is.NoErr(err)
	w.clock.Add(24 * time.Hour) // the token's iat is a day old
	ahead := &clock{t: w.clock.Now().Add(2 * time.Hour)}
	c := w.client(t, tok.JWT, filepath.Join(t.TempDir(), "license.json"), func(cfg *client.Config) {
		cfg.Now, cfg.RevocationListMaxAge, cfg.Logger = ahead.Now, time.Hour, slog.New(slog.DiscardHandler)
	})
	lic, err := c.Check(context.Background())
	is.NoErr(err) // the list was signed a moment ago
	is.True(lic.Valid)
	is.Equal(lic.Reason, client.ReasonValid)

	w.srv.Close() // offline, the same clock: the list is 2 hours old to it
	lic, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrRevocationListStale))
	is.True(!lic.Valid)
}

// A signed 429 from the revocations route is no fresh list: the token
// holds, with the refusal as its Warning (and Run's backoff honours its
// Retry-After), not silently until the list's bound runs out; past the
// bound, the error says it too.
func TestRevocationListRateLimited(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	id, _ := w.key(t)
	tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
	is.NoErr(err)
	limited := httptest.NewServer(licensing.NewHandler(w.svc, licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
		return licensing.Actor{}, licensing.ErrUnauthorized
	}), licensing.HandlerConfig{RateLimit: 1, RateBurst: 1}))
	defer limited.Close()
	res, err := http.Get(limited.URL + "/api/v1/licensing/revocations?org=org-1") // the one request allowed
	is.NoErr(err)
	res.Body.Close()

	now := &clock{t: w.clock.Now()}
	c := w.client(t, tok.JWT, filepath.Join(t.TempDir(), "license.json"), func(cfg *client.Config) {
		cfg.ServerURL, cfg.Now, cfg.Logger = limited.URL, now.Now, slog.New(slog.DiscardHandler)
	})
	lic, err := c.Check(context.Background())
	is.NoErr(err) // the token holds
	var rl *client.RateLimitedError
	is.True(errors.As(lic.Warning, &rl)) // but no fresh list came, and that is said
	is.True(rl.RetryAfter > 0)
	is.Equal(lic.Reason, client.ReasonRateLimited)

	now.Add(31 * 24 * time.Hour)
	_, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrRevocationListStale))
	is.True(errors.As(err, &rl)) // and why no list came
}
