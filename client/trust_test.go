package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
	lic, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrUnexpectedStatus)) // the caller's policy still applies: the 308 is not an answer of the API
	is.True(!lic.Valid)
	is.Equal(asked.Load(), int64(1))
}

// An unexpected status after a redirect within the origin names what
// answered (a 301 or 302 turns the POST into a GET without the key) and
// the URL first called, not only the latter.
func TestUnexpectedStatusAfterARedirect(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.Error(rw, "no such page", http.StatusNotFound)
			return
		}
		http.Redirect(rw, r, "/login?next=x", http.StatusFound) // a sign-in gateway before the API
	}))
	defer srv.Close()
	c := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = srv.URL; cfg.Logger = slog.New(slog.DiscardHandler) })
	_, err := c.Check(context.Background())
	var se *client.StatusError
	is.True(errors.As(err, &se))
	is.Equal(se.Status, http.StatusNotFound)
	is.Equal(se.Method, http.MethodGet)
	is.Equal(se.URL, srv.URL+"/login") // what answered, without its query
	is.Equal(se.From, srv.URL+"/api/v1/licensing/validate")
	is.True(strings.Contains(err.Error(), "from GET "+srv.URL+"/login, redirected from POST "+srv.URL+"/api/v1/licensing/validate"))
	is.True(strings.Contains(err.Error(), "no redirect")) // the fix: a ServerURL that needs none
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
			if err == nil {
				err = lic.Warning // the cache holds: the cause is beside the license
			}
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

// A genuine signed answer relayed by a reverse proxy verifies whatever the
// proxy does to Date (nginx replaces it with its own, a second later on a
// tick, or far off on a CDN edge); an altered signed date or body does not.
// The skew is measured from the signed date, not the proxy's.
func TestSignedAnswerThroughReverseProxy(t *testing.T) {
	tests := []struct {
		name    string
		rewrite func(h http.Header, body []byte) []byte
		trusted bool
	}{
		{"re-stamps Date a second on", func(h http.Header, b []byte) []byte {
			d, _ := http.ParseTime(h.Get("Date"))
			h.Set("Date", d.Add(time.Second).Format(http.TimeFormat))
			return b
		}, true},
		{"stamps its own clock", func(h http.Header, b []byte) []byte {
			h.Set("Date", time.Now().UTC().Format(http.TimeFormat)) // months from the fake server clock
			return b
		}, true},
		{"drops Date", func(h http.Header, b []byte) []byte { h.Del("Date"); return b }, true},
		{"passes everything", func(h http.Header, b []byte) []byte { return b }, true},
		{"alters the signed date", func(h http.Header, b []byte) []byte {
			d, _ := http.ParseTime(h.Get("Licensing-Date"))
			h.Set("Licensing-Date", d.Add(time.Second).Format(http.TimeFormat))
			return b
		}, false},
		{"alters the signed date and Date alike", func(h http.Header, b []byte) []byte {
			d, _ := http.ParseTime(h.Get("Licensing-Date"))
			later := d.Add(24 * time.Hour).Format(http.TimeFormat)
			h.Set("Licensing-Date", later)
			h.Set("Date", later)
			return b
		}, false},
		{"drops the signed date and re-stamps Date", func(h http.Header, b []byte) []byte {
			d, _ := http.ParseTime(h.Get("Date"))
			h.Del("Licensing-Date")
			h.Set("Date", d.Add(time.Second).Format(http.TimeFormat))
			return b
		}, false},
		{"alters the body", func(h http.Header, b []byte) []byte {
			return bytes.Replace(b, []byte(`"business"`), []byte(`"enterprise"`), 1)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			id, key := w.key(t)
			proxy := reverseProxy(t, w, tc.rewrite)
			cache := filepath.Join(t.TempDir(), "license.json")
			c := w.client(t, key, cache, func(cfg *client.Config) { cfg.ServerURL = proxy.URL })
			lic, err := c.Check(context.Background())
			if !tc.trusted {
				is.True(errors.Is(err, client.ErrUntrusted)) // refused
				is.True(!lic.Valid)
				return
			}
			is.NoErr(err) // a genuine answer, only relayed
			is.True(lic.Valid)
			is.Equal(lic.Source, client.SourceOnline)
			is.Equal(lic.ClockSkew, time.Duration(0))   // the server's clock is the client's
			is.True(lic.CheckedAt.Equal(w.clock.Now())) // the signed date

			// The cache keeps the signed date: the answer verifies offline.
			w.srv.Close()
			lic, err = c.Check(context.Background())
			is.NoErr(err)
			is.True(errors.Is(lic.Warning, client.ErrUnreachable))
			is.Equal(lic.Source, client.SourceCache)
			is.True(lic.Valid)

			// A token's revocation list, signed the same way, verifies too.
			w2 := newWorld(t)
			id, _ = w2.key(t)
			tok, err := w2.svc.IssueToken(context.Background(), w2.owner, id, licensing.AlgEdDSA)
			is.NoErr(err)
			proxy2 := reverseProxy(t, w2, tc.rewrite)
			lic, err = w2.client(t, tok.JWT, "", func(cfg *client.Config) { cfg.ServerURL = proxy2.URL }).Check(context.Background())
			is.NoErr(err) // an untrusted list would be reported
			is.Equal(lic.Source, client.SourceToken)
			is.NoErr(w2.svc.RevokeKey(context.Background(), w2.owner, id))
			_, err = w2.client(t, tok.JWT, "", func(cfg *client.Config) { cfg.ServerURL = proxy2.URL }).Check(context.Background())
			is.True(errors.Is(err, client.ErrRevoked)) // and is read
		})
	}
}

// reverseProxy is an httputil.ReverseProxy in front of the world's server
// that rewrites each answer's headers and body.
func reverseProxy(t *testing.T, w *world, rewrite func(http.Header, []byte) []byte) *httptest.Server {
	t.Helper()
	u, _ := url.Parse(w.srv.URL)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(res *http.Response) error {
		b, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		b = rewrite(res.Header, b)
		res.Body = io.NopCloser(bytes.NewReader(b))
		res.ContentLength = int64(len(b))
		res.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

// Signed answers carry the signed date twice, in Licensing-Date and in
// Date, and the signature header keeps its three parameters: a client
// written before Licensing-Date (which verifies over Date and refuses any
// other parameter) still verifies them when no proxy re-stamps Date.
// Unsigned answers are as they were.
func TestSignedAnswerHeadersForEveryClient(t *testing.T) {
	sigHeader := regexp.MustCompile(`^kid="([A-Za-z0-9_-]+)", alg="ed25519", sig="([A-Za-z0-9+/]+={0,2})"$`)
	tests := []struct {
		name   string
		nonce  string
		status int
		signed bool
	}{
		{"signed", "n0nce", http.StatusOK, true},
		{"unsigned", "", http.StatusOK, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			_, key := w.key(t)
			body, _ := json.Marshal(map[string]string{"licenseKey": key, "nonce": tc.nonce})
			res, err := http.Post(w.srv.URL+"/api/v1/licensing/validate", "application/json", bytes.NewReader(body))
			is.NoErr(err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			is.NoErr(err)
			is.Equal(res.StatusCode, tc.status)
			is.True(bytes.Contains(b, []byte(`"valid":true`)))
			if !tc.signed {
				is.Equal(res.Header.Get("Licensing-Signature"), "")
				is.Equal(res.Header.Get("Licensing-Date"), "")
				is.True(!bytes.Contains(b, []byte(`"nonce"`)))
				return
			}
			date := res.Header.Get("Date")
			is.Equal(res.Header.Get("Licensing-Date"), date) // the same text
			d, err := http.ParseTime(date)
			is.NoErr(err)
			is.True(d.Equal(w.clock.Now()))
			m := sigHeader.FindStringSubmatch(res.Header.Get("Licensing-Signature"))
			is.True(m != nil) // the header format of old clients
			sig, _ := base64.StdEncoding.DecodeString(m[2])
			var jwks struct {
				Keys []struct{ Kid, Crv, X string } `json:"keys"`
			}
			is.NoErr(json.Unmarshal(signing.JWKS(), &jwks))
			verified := false
			for _, k := range jwks.Keys {
				if k.Kid == m[1] && k.Crv == "Ed25519" {
					pub, _ := base64.RawURLEncoding.DecodeString(k.X)
					msg := fmt.Sprintf("licensing-signature-v1\n%d\n%s\n%s\n%s", res.StatusCode, m[1], date, b)
					verified = ed25519.Verify(pub, []byte(msg), sig) // as an old client does, over Date
				}
			}
			is.True(verified)
		})
	}
}

// Hostile servers the client must not trust or hang on.
func TestHostileServer(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	tests := []struct {
		name string
		h    http.HandlerFunc
		want error
	}{
		{"giant body", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Licensing-Signature", `kid="a", alg="ed25519", sig="AAAA"`)
			rw.Write([]byte(big))
		}, client.ErrUnreachable},
		{"unsigned 200", func(rw http.ResponseWriter, r *http.Request) {
			rw.Write([]byte(`{"valid":true,"plan":"enterprise","features":{}}`))
		}, client.ErrUntrusted},
		{"unknown kid", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Licensing-Signature", `kid="evil", alg="ed25519", sig="`+strings.Repeat("A", 86)+`=="`)
			rw.Write([]byte(`{"valid":true,"plan":"enterprise","features":{}}`))
		}, client.ErrUntrusted},
		{"slow body", func(rw http.ResponseWriter, r *http.Request) {
			rw.WriteHeader(200)
			rw.(http.Flusher).Flush()
			<-r.Context().Done()
		}, client.ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			_, key := w.key(t)
			hostile := httptest.NewServer(tc.h)
			defer hostile.Close()
			c := w.client(t, key, "", func(cfg *client.Config) {
				cfg.ServerURL = hostile.URL
				cfg.HTTPClient = &http.Client{Timeout: time.Second}
			})
			lic, err := c.Check(context.Background())
			is.True(errors.Is(err, tc.want))
			is.True(!lic.Valid)
			is.Equal(lic.Source, client.SourceFallback)
		})
	}
}
