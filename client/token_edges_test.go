package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

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
