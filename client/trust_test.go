package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/client"
)

// elsewhere is a server the key must never reach; it counts what it gets.
func elsewhere(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n.Add(1)
		rw.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestRedirectToAnotherOriginIsRefused(t *testing.T) {
	w := newWorld(t)
	_, key := w.key(t)
	other, hits := elsewhere(t)
	port := other.URL[strings.LastIndex(other.URL, ":")+1:]
	ownPort := w.srv.URL[strings.LastIndex(w.srv.URL, ":")+1:]
	tests := []struct {
		name   string
		status int
		to     string
	}{
		{"307 to another port", http.StatusTemporaryRedirect, other.URL},
		{"308 to another port", http.StatusPermanentRedirect, other.URL},
		{"301 to another port", http.StatusMovedPermanently, other.URL},
		{"302 to another port", http.StatusFound, other.URL},
		{"303 to another port", http.StatusSeeOther, other.URL},
		{"307 to another host name", http.StatusTemporaryRedirect, "http://localhost:" + port},
		{"307 to another scheme", http.StatusTemporaryRedirect, "https://127.0.0.1:" + ownPort},
		{"307 to a user-info trick", http.StatusTemporaryRedirect, "http://127.0.0.1:" + ownPort + "@localhost:" + port},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			redirector := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				http.Redirect(rw, r, tc.to+r.URL.Path, tc.status)
			}))
			defer redirector.Close()
			c := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = redirector.URL })
			lic, err := c.Check(context.Background())
			is.True(errors.Is(err, client.ErrRedirect))    // refused,
			is.True(errors.Is(err, client.ErrUnreachable)) // and treated as an unreachable server
			is.Equal(lic.Reason, client.ReasonRedirectRefused)
			is.Equal(lic.Source, client.SourceFallback)
			is.Equal(hits.Load(), int64(0)) // the other server never heard of the key
			is.True(!strings.Contains(err.Error(), key))
		})
	}
}

func TestRedirectWithinTheOriginIsFollowed(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	var redirected atomic.Int64
	handler := w.srv.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/old"); ok {
			redirected.Add(1)
			http.Redirect(rw, r, rest, http.StatusPermanentRedirect) // keeps the method and body
			return
		}
		handler.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	own := &http.Client{Timeout: 5 * time.Second}
	c := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = srv.URL + "/old"; cfg.HTTPClient = own })
	lic, err := c.Check(context.Background())
	is.NoErr(err)
	is.True(lic.Valid)
	is.Equal(redirected.Load(), int64(1))
	is.True(own.CheckRedirect == nil) // the caller's client is not changed

	var asked atomic.Int64
	own.CheckRedirect = func(*http.Request, []*http.Request) error { asked.Add(1); return http.ErrUseLastResponse }
	c = w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = srv.URL + "/old"; cfg.HTTPClient = own })
	_, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrUntrusted)) // the caller's policy still applies: the unsigned 308 is not believed
	is.Equal(asked.Load(), int64(1))
}

func TestTokenRevocationsAreNotFetchedElsewhere(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	id, _ := w.key(t)
	tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
	is.NoErr(err)
	other, hits := elsewhere(t)
	redirector := httptest.NewServer(http.RedirectHandler(other.URL+"/api/v1/licensing/revocations", http.StatusFound))
	defer redirector.Close()
	c := w.client(t, tok.JWT, "", func(cfg *client.Config) { cfg.ServerURL = redirector.URL })
	lic, err := c.Check(context.Background())
	is.NoErr(err) // the token itself holds
	is.Equal(lic.Source, client.SourceToken)
	is.Equal(hits.Load(), int64(0))
}

// A nonce-bound answer is fresh whatever the local clock says; the skew is
// reported, and the offline checks use it.
func TestClockSkewedInstall(t *testing.T) {
	tests := []struct {
		name        string
		localOffset time.Duration // the local clock minus the server's
		offline     client.Source // after the server goes, 1 day later
	}{
		{"2 hours behind", -2 * time.Hour, client.SourceCache},
		{"2 hours ahead", 2 * time.Hour, client.SourceCache},
		{"30 days behind", -30 * 24 * time.Hour, client.SourceCache},
		{"1 year ahead", 365 * 24 * time.Hour, client.SourceFallback}, // a clock ahead only shortens grace
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			_, key := w.key(t)
			local := &clock{t: w.clock.Now().Add(tc.localOffset)}
			cache := filepath.Join(t.TempDir(), "license.json")
			c := w.client(t, key, cache, func(cfg *client.Config) { cfg.Now = local.Now })
			lic, err := c.Check(context.Background())
			is.NoErr(err) // validates online at once
			is.True(lic.Valid)
			is.Equal(lic.Source, client.SourceOnline)
			is.Equal(lic.ClockSkew, -tc.localOffset) // reported
			is.True(lic.CheckedAt.Equal(w.clock.Now()))

			w.srv.Close()
			local.Add(24 * time.Hour)
			lic, err = c.Check(context.Background())
			is.True(errors.Is(err, client.ErrUnreachable))
			is.True(!errors.Is(err, client.ErrClockRollback)) // a steady skew is no rollback
			is.Equal(lic.Source, tc.offline)
			is.Equal(lic.ClockSkew, -tc.localOffset) // still reported from the cache

			local.Add(-3 * 24 * time.Hour) // now the clock goes back two days before the answer
			lic, err = c.Check(context.Background())
			is.True(errors.Is(err, client.ErrClockRollback)) // the skew feeds rollback detection
			is.Equal(lic.Reason, client.ReasonClockRolledBack)
			is.Equal(lic.Source, client.SourceFallback)
		})
	}
}

func TestClockSetBackWhileOnline(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	cache := filepath.Join(t.TempDir(), "license.json")
	local := &clock{t: w.clock.Now()}
	c := w.client(t, key, cache, func(cfg *client.Config) { cfg.Now = local.Now })
	_, err := c.Check(context.Background())
	is.NoErr(err)
	w.clock.Add(time.Hour)
	local.Add(-48 * time.Hour) // set back two days while the server is up
	lic, err := c.Check(context.Background())
	is.NoErr(err) // the server vouches for now; the local clock does not matter
	is.Equal(lic.Source, client.SourceOnline)
	is.Equal(lic.ClockSkew, 49*time.Hour)
	w.srv.Close()
	lic, err = c.Check(context.Background())
	is.True(!errors.Is(err, client.ErrClockRollback)) // measured, so not an alarm
	is.Equal(lic.Source, client.SourceCache)
}

// Editing the skew in the cache file never lengthens the grace period.
func TestEditedSkewDoesNotExtendGrace(t *testing.T) {
	for _, skew := range []time.Duration{-3 * 24 * time.Hour, -365 * 24 * time.Hour, 365 * 24 * time.Hour, 1} {
		t.Run(skew.String(), func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			_, key := w.key(t)
			cache := filepath.Join(t.TempDir(), "license.json")
			c := w.client(t, key, cache)
			_, err := c.Check(context.Background())
			is.NoErr(err)
			w.srv.Close()
			w.clock.Add(8 * 24 * time.Hour) // grace (7 days) is over
			b, err := os.ReadFile(cache)
			is.NoErr(err)
			var st map[string]any
			is.NoErr(json.Unmarshal(b, &st))
			st["clockSkew"] = int64(skew)
			b, _ = json.Marshal(st)
			is.NoErr(os.WriteFile(cache, b, 0o600))
			lic, _ := c.Check(context.Background())
			is.Equal(lic.Source, client.SourceFallback) // no longer license for an edit
			is.True(!lic.Valid)
		})
	}
}
