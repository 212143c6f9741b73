package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/client"
	"github.com/licensekit/licensing/internal/keyfile"
	"github.com/licensekit/licensing/internal/wire"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type orgs struct {
	mu  sync.Mutex
	org licensing.Organization
}

func (o *orgs) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id != o.org.ID {
		return licensing.Organization{}, licensing.ErrOrgNotFound
	}
	return o.org, nil
}

var signing = func() *licensing.SigningKeys {
	k, err := licensing.GenerateSigningKeys(2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// world is a live license server (the library's handler) and a fake clock
// shared with the client.
type world struct {
	svc   *licensing.Service
	srv   *httptest.Server
	clock *clock
	orgs  *orgs
	owner licensing.Actor
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{clock: &clock{t: time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)},
		orgs: &orgs{org: licensing.Organization{ID: "org-1", Name: "Acme", OwnerID: "u1", Plan: "business", Active: true,
			Features: map[string]any{"selfHostingLicense": true, "sso": true}}},
		owner: licensing.Actor{UserID: "u1", OrganizationID: "org-1"}}
	svc, err := licensing.New(licensing.Config{Store: licensing.NewMemoryStore(), Organizations: w.orgs,
		Pepper: bytes.Repeat([]byte{3}, 32), Signing: signing, Now: w.clock.Now,
		Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.test"}})
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	w.srv = httptest.NewServer(licensing.NewHandler(svc, licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
		return w.owner, nil
	}), licensing.HandlerConfig{RateLimit: licensing.Unlimited, OwnerRateLimit: licensing.Unlimited})) // tests check many times a second
	t.Cleanup(func() { w.srv.Close(); svc.Close(context.Background()) })
	return w
}

func (w *world) key(t *testing.T) (string, string) {
	t.Helper()
	c, err := w.svc.CreateKey(context.Background(), w.owner, licensing.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Key.ID, c.LicenseKey
}

func (w *world) client(t *testing.T, key, cache string, mod ...func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{ServerURL: w.srv.URL, LicenseKey: key, PublicKeys: signing.JWKS(), Issuer: "licensing.test",
		CachePath: cache, Now: w.clock.Now, InstanceName: "test", InstanceURL: "https://self.example"}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOnlineCheck(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	cache := filepath.Join(t.TempDir(), "license.json")
	lic, err := w.client(t, key, cache).Check(context.Background())
	is.NoErr(err)
	is.True(lic.Valid)
	is.Equal(lic.Source, client.SourceOnline)
	is.Equal(lic.Plan, "business")
	is.Equal(lic.Features["sso"], true)
	is.Equal(lic.OrganizationName, "Acme")
	is.True(lic.CheckedAt.Equal(w.clock.Now()))
	fi, err := os.Stat(cache)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600))
	b, _ := os.ReadFile(cache)
	is.True(!bytes.Contains(b, []byte(key))) // the cache never holds the key
}

func TestGraceThenFallback(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	cache := filepath.Join(t.TempDir(), "license.json")
	c := w.client(t, key, cache)
	_, err := c.Check(context.Background())
	is.NoErr(err)
	w.srv.Close() // the server goes away

	w.clock.Add(6 * 24 * time.Hour)
	lic, err := c.Check(context.Background())
	is.NoErr(err)                                          // the cached answer holds within grace: no error,
	is.True(errors.Is(lic.Warning, client.ErrUnreachable)) // the cause said beside the license
	is.Equal(lic.Reason, client.ReasonServerUnreachable)
	is.Equal(lic.Source, client.SourceCache)
	is.True(lic.Valid)
	is.Equal(lic.Plan, "business")

	w.clock.Add(2 * 24 * time.Hour) // 8 days after the server signed it
	lic, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrUnreachable))
	is.Equal(lic.Source, client.SourceFallback) // then the fallback plan
	is.Equal(lic.Plan, "community")
	is.True(!lic.Valid)
	is.Equal(lic.Warning, nil) // the error is Check's

	// without a cache, the fallback at once, with the error
	lic, err = w.client(t, key, "").Check(context.Background())
	is.True(errors.Is(err, client.ErrUnreachable))
	is.Equal(lic.Source, client.SourceFallback)
	is.True(!lic.Valid)
	is.Equal(lic.Warning, nil)
}

func TestEditedCacheIsRejected(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	cache := filepath.Join(t.TempDir(), "license.json")
	c := w.client(t, key, cache)
	_, err := c.Check(context.Background())
	is.NoErr(err)
	w.srv.Close()
	b, err := os.ReadFile(cache)
	is.NoErr(err)
	for _, i := range []int{bytes.Index(b, []byte(`"body"`)) + 12, bytes.Index(b, []byte(`"signature"`)) + 30} {
		edited := append([]byte(nil), b...)
		edited[i] ^= 0x01 // one byte changed
		is.NoErr(os.WriteFile(cache, edited, 0o600))
		lic, err := c.Check(context.Background())
		is.True(errors.Is(err, client.ErrCacheInvalid)) // rejected
		is.Equal(lic.Source, client.SourceFallback)
	}
}

// A fresh signed answer is the license, whatever befalls the cache file:
// one that can be neither read nor written (its directory is a file, or it
// became a directory after New) gives the fresh license with the cache's
// failure as its Warning, not the fallback plan; a refusal stays a refusal.
func TestFreshAnswerDespiteBrokenCache(t *testing.T) {
	w := newWorld(t)
	for name, broken := range map[string]func(t *testing.T) string{
		"its directory is a file": func(t *testing.T) string {
			file := filepath.Join(t.TempDir(), "state")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(file, "license.json")
		},
		"a directory": func(t *testing.T) string { return filepath.Join(t.TempDir(), "license.json") },
	} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			id, key := w.key(t)
			cache := broken(t)
			c := w.client(t, key, cache, func(cfg *client.Config) { cfg.Logger = slog.New(slog.DiscardHandler) })
			if name == "a directory" {
				is.NoErr(os.Mkdir(cache, 0o700)) // after New, which refuses a directory
			}
			lic, err := c.Check(context.Background())
			is.NoErr(err) // the server vouched for the license just now
			is.True(lic.Valid)
			is.Equal(lic.Source, client.SourceOnline)
			is.Equal(lic.Plan, "business")
			is.True(errors.Is(lic.Warning, client.ErrCacheWrite)) // the cache's failure said beside it
			is.Equal(lic.Reason, client.ReasonCacheFailed)

			is.NoErr(w.svc.RevokeKey(context.Background(), w.owner, id))
			lic, err = c.Check(context.Background())
			is.True(errors.Is(err, client.ErrInvalidKey)) // a signed refusal is still one
			is.True(errors.Is(err, client.ErrCacheWrite))
			is.True(!lic.Valid)
			is.Equal(lic.Reason, client.ReasonRevokedOrUnknown)
			is.Equal(lic.ServerMessage, "Invalid or revoked license key")
		})
	}
}

// Check's contract, across servers (up, down, a firewall's unsigned 403, a
// proxy that alters answers), cache files (none, the last good answer or
// revocation list, damaged), clocks (now, within and past the grace period
// or the revocation list's bound, set back), a revoked key and a license
// key or an offline token: err is nil exactly when the License is Valid; a
// Valid License comes from the server, the cache or the token, with a
// Reason other than valid (or key_expiring) only beside a Warning; any
// other License is the fallback plan, with no Warning.
func TestCheckContract(t *testing.T) {
	w := newWorld(t)
	t0 := w.clock.Now()
	goodID, good := w.key(t)
	revokedID, revoked := w.key(t)
	goodTok, err := w.svc.IssueToken(context.Background(), w.owner, goodID, licensing.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	revokedTok, err := w.svc.IssueToken(context.Background(), w.owner, revokedID, licensing.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	licenses := map[string]string{"key": good, "revoked key": revoked, "token": goodTok.JWT, "revoked token": revokedTok.JWT}
	caches := map[string]map[string][]byte{} // license -> cache -> file
	for name, l := range licenses {
		path := filepath.Join(t.TempDir(), "license.json")
		if _, err := w.client(t, l, path).Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		caches[name] = map[string][]byte{"none": nil, "last good": b, "damaged": append(b[:len(b)/2:len(b)/2], "garbage"...)}
	}
	if err := w.svc.RevokeKey(context.Background(), w.owner, revokedID); err != nil {
		t.Fatal(err)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	servers := map[string]string{"up": w.srv.URL, "down": down.URL, "firewall": unsigned(t, http.StatusForbidden), "altering proxy": tamper(t, w).URL}
	day := 24 * time.Hour
	clocks := map[string]time.Duration{"now": 0, "6 days on": 6 * day, "8 days on": 8 * day, "40 days on": 40 * day, "set back": -3 * time.Hour}
	for lname, l := range licenses {
		for cname, file := range caches[lname] {
			for sname, srv := range servers {
				for kname, at := range clocks {
					name := strings.Join([]string{lname, cname, sname, kname}, ", ")
					path := filepath.Join(t.TempDir(), "license.json")
					if file != nil {
						if err := os.WriteFile(path, file, 0o600); err != nil {
							t.Fatal(err)
						}
					}
					now := &clock{t: t0.Add(at)}
					c := w.client(t, l, path, func(cfg *client.Config) {
						cfg.ServerURL, cfg.Now, cfg.Logger = srv, now.Now, slog.New(slog.DiscardHandler)
					})
					lic, err := c.Check(context.Background())
					switch {
					case (err == nil) != lic.Valid:
						t.Errorf("%s: valid %v with error %v", name, lic.Valid, err)
					case lic.Valid && lic.Source == client.SourceFallback:
						t.Errorf("%s: a valid fallback license", name)
					case lic.Valid && (lic.Reason == client.ReasonValid || lic.Reason == client.ReasonKeyExpiring) != (lic.Warning == nil):
						t.Errorf("%s: reason %s with warning %v", name, lic.Reason, lic.Warning)
					case !lic.Valid && (lic.Source != client.SourceFallback || lic.Plan != "community" || lic.Warning != nil || lic.Reason == client.ReasonValid):
						t.Errorf("%s: not valid, yet source %s, plan %s, warning %v, reason %s", name, lic.Source, lic.Plan, lic.Warning, lic.Reason)
					case strings.HasPrefix(lname, "revoked") && sname == "up" && lic.Valid:
						t.Errorf("%s: a revoked license valid while the server answers", name)
					case lname == "revoked key" && lic.Valid && lic.Source != client.SourceCache:
						t.Errorf("%s: a revoked key valid from %s", name, lic.Source)
					}
					for _, e := range []error{err, lic.Warning} {
						if e != nil && (strings.Contains(e.Error(), l) || strings.Contains(e.Error(), l[strings.LastIndex(l, ".")+1:])) {
							t.Errorf("%s: the key or token in %q", name, e) // not even a token's signature
						}
					}
				}
			}
		}
	}
}

// The instance id kept in the cache file is sent at every check: one that
// the server would refuse (the file damaged or edited) is replaced by a
// new one, not sent, since the server refuses the whole check for it and
// the license would be lost with the grace period.
func TestBadInstanceIDInCacheIsReplaced(t *testing.T) {
	w := newWorld(t)
	for name, id := range map[string]string{"a newline": "host-1\n", "a space": "host 1", "too long": strings.Repeat("i", 129)} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			_, key := w.key(t)
			cache := filepath.Join(t.TempDir(), "license.json")
			doc, err := json.Marshal(map[string]any{"version": 1, "instanceId": id})
			is.NoErr(err)
			is.NoErr(os.WriteFile(cache, doc, 0o600))
			lic, err := w.client(t, key, cache).Check(context.Background())
			is.NoErr(err) // checked, with a new id
			is.Equal(lic.Source, client.SourceOnline)
			b, err := os.ReadFile(cache)
			is.NoErr(err)
			var kept struct{ InstanceID string }
			is.NoErr(json.Unmarshal(b, &kept))
			is.True(kept.InstanceID != "" && kept.InstanceID != id)
		})
	}
}

// replayer answers every request with the first answer it recorded.
type replayer struct {
	mu       sync.Mutex
	recorded *http.Response
	body     []byte
}

func (r *replayer) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recorded == nil {
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		r.body, _ = io.ReadAll(res.Body)
		res.Body.Close()
		r.recorded = res
	}
	res := *r.recorded
	res.Body = io.NopCloser(bytes.NewReader(r.body))
	return &res, nil
}

func TestReplayedAnswerIsRejected(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	c := w.client(t, key, "", func(cfg *client.Config) { cfg.HTTPClient = &http.Client{Transport: &replayer{}} })
	lic, err := c.Check(context.Background())
	is.NoErr(err) // the first, genuine answer
	is.True(lic.Valid)
	lic, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrUntrusted)) // the same signed answer again: old nonce
	is.Equal(lic.Source, client.SourceFallback)
}

func TestForgedServerIsRejected(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	fake := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		io.WriteString(rw, `{"valid":true,"plan":"enterprise","features":{}}`)
	}))
	defer fake.Close()
	c := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = fake.URL })
	lic, err := c.Check(context.Background())
	is.True(errors.Is(err, client.ErrUntrusted)) // an unsigned "enterprise" is not believed
	is.Equal(lic.Plan, "community")
}

// An answer signed by a key that Config.PublicKeys does not hold (the
// product embeds a staging server's keys, or the server's keys were
// replaced) is not trusted, and the error names the key that signed it,
// the keys embedded and the fix.
func TestAnswerSignedByAnotherKeyNamesIt(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	staging, err := licensing.GenerateSigningKeys(0)
	is.NoErr(err)
	lic, err := w.client(t, key, "", func(cfg *client.Config) {
		cfg.PublicKeys, cfg.Logger = staging.PublicKeysPEM(), slog.New(slog.DiscardHandler)
	}).Check(context.Background())
	is.True(errors.Is(err, client.ErrUntrusted)) // not believed
	is.True(!lic.Valid)
	is.True(strings.Contains(err.Error(), `signed with key "`+signing.KeyID()+`", which Config.PublicKeys does not hold (it holds `+staging.KeyID()+")"))
	is.True(strings.Contains(err.Error(), "embed the public keys the vendor gives for the server at Config.ServerURL; else the answer is forged"))
}

// An answer altered on its way (its body, or its status: a signed 401
// turned into a 200) is not trusted, and the error says that the known
// key's signature does not verify, not that the key is unknown.
func TestAlteredAnswerSaysSo(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	proxy := tamper(t, w) // "business" becomes "enterprise"
	lic, err := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL, cfg.Logger = proxy.URL, slog.New(slog.DiscardHandler) }).Check(context.Background())
	is.True(errors.Is(err, client.ErrUntrusted))
	is.Equal(lic.Plan, "community")
	is.True(strings.Contains(err.Error(), `the signature of key "`+signing.KeyID()+`" does not verify over the answer's status, date and body`))
	is.True(!strings.Contains(err.Error(), "not signed by a known key"))

	// a signed 200 turned into a 401 (so the key would be remembered as
	// revoked) fails the signature too, which covers the status
	handler := w.srv.Config.Handler
	revoking := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, r)
		maps.Copy(rw.Header(), rec.Header())
		rw.WriteHeader(http.StatusUnauthorized)
		rw.Write(rec.Body.Bytes())
	}))
	defer revoking.Close()
	cache := filepath.Join(t.TempDir(), "license.json")
	_, err = w.client(t, key, cache).Check(context.Background())
	is.NoErr(err)
	lic, err = w.client(t, key, cache, func(cfg *client.Config) { cfg.ServerURL, cfg.Logger = revoking.URL, slog.New(slog.DiscardHandler) }).Check(context.Background())
	is.NoErr(err) // the cached license holds,
	is.True(errors.Is(lic.Warning, client.ErrUntrusted))
	is.True(strings.Contains(lic.Warning.Error(), "does not verify over the answer's status, date and body"))
	is.Equal(lic.Source, client.SourceCache)
}

func TestClockRollback(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	cache := filepath.Join(t.TempDir(), "license.json")
	_, err := w.client(t, key, cache).Check(context.Background())
	is.NoErr(err)
	w.srv.Close()
	back := &clock{t: w.clock.Now().Add(-48 * time.Hour)} // clock moved back two days
	c := w.client(t, key, cache, func(cfg *client.Config) { cfg.Now = back.Now })
	lic, err := c.Check(context.Background())
	is.True(errors.Is(err, client.ErrClockRollback))
	is.Equal(lic.Source, client.SourceFallback)
}

// A clock set back while offline is noticed against the latest time the
// client saw offline too, not only against the server's last signed date:
// winding the clock back a few days, again and again, would otherwise keep
// the last good answer (or a token without a fresh revocation list) valid
// for ever.
func TestClockSetBackWhileOffline(t *testing.T) {
	w := newWorld(t)
	t0 := w.clock.Now()
	_, key := w.key(t)
	id, _ := w.key(t)
	tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, l := range []string{key, tok.JWT} {
		if _, err := w.client(t, l, filepath.Join(dir, l[:8]+".json")).Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	w.srv.Close()
	for name, l := range map[string]string{"license key": key, "offline token": tok.JWT} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			local := &clock{t: t0.Add(5 * 24 * time.Hour)}
			c := w.client(t, l, filepath.Join(dir, l[:8]+".json"), func(cfg *client.Config) {
				cfg.Now, cfg.Logger = local.Now, slog.New(slog.DiscardHandler)
			})
			lic, err := c.Check(context.Background())
			is.NoErr(err) // five days on: still valid offline
			is.True(lic.Valid)
			local.Add(-4 * 24 * time.Hour) // wound back to a day after the server's last word
			lic, err = c.Check(context.Background())
			is.True(errors.Is(err, client.ErrClockRollback)) // noticed
			is.True(!lic.Valid)
			local.Add(4*24*time.Hour - 30*time.Minute) // within ClockTolerance of the latest time seen
			_, err = c.Check(context.Background())
			is.NoErr(err)

			local.Add(time.Hour) // past it: recorded
			_, err = c.Check(context.Background())
			is.NoErr(err)
			before, err := os.ReadFile(filepath.Join(dir, l[:8]+".json"))
			is.NoErr(err)
			local.Add(30 * time.Second) // checks within a minute do not write the file each time
			_, err = c.Check(context.Background())
			is.NoErr(err)
			after, err := os.ReadFile(filepath.Join(dir, l[:8]+".json"))
			is.NoErr(err)
			is.Equal(string(before), string(after))
		})
	}
}

func TestRevokedKey(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	id, key := w.key(t)
	cache := filepath.Join(t.TempDir(), "license.json")
	c := w.client(t, key, cache)
	_, err := c.Check(context.Background())
	is.NoErr(err)
	is.NoErr(w.svc.RevokeKey(context.Background(), w.owner, id))
	lic, err := c.Check(context.Background())
	is.True(errors.Is(err, client.ErrInvalidKey)) // revoked on the next check
	is.True(!lic.Valid)
	w.srv.Close()
	_, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrInvalidKey)) // and the signed refusal is remembered offline
}

func TestPlanChangesAndRefusals(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	c := w.client(t, key, "")
	w.orgs.mu.Lock()
	w.orgs.org.Plan, w.orgs.org.Features = "starter", map[string]any{"selfHostingLicense": false}
	w.orgs.mu.Unlock()
	_, err := c.Check(context.Background())
	is.True(errors.Is(err, client.ErrPlanNotEligible))
	w.orgs.mu.Lock()
	w.orgs.org.Plan, w.orgs.org.Features, w.orgs.org.Active = "business", map[string]any{"selfHostingLicense": true}, false
	w.orgs.mu.Unlock()
	_, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrInactive))
}

func TestRateLimited(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	svc, err := licensing.New(licensing.Config{Store: licensing.NewMemoryStore(), Organizations: w.orgs,
		Pepper: bytes.Repeat([]byte{3}, 32), Signing: signing, Now: w.clock.Now, Policy: licensing.Policy{Issuer: "licensing.test"}})
	is.NoErr(err)
	defer svc.Close(context.Background())
	srv := httptest.NewServer(licensing.NewHandler(svc, licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
		return licensing.Actor{}, licensing.ErrUnauthorized
	}), licensing.HandlerConfig{RateLimit: 1, RateBurst: 1}))
	defer srv.Close()
	c := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = srv.URL })
	c.Check(context.Background())
	_, err = c.Check(context.Background())
	var rl *client.RateLimitedError
	is.True(errors.As(err, &rl)) // typed, with the wait
	is.Equal(rl.RetryAfter, 60*time.Second)
}

func TestOfflineToken(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	id, _ := w.key(t)
	tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
	is.NoErr(err)
	rsTok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgRS256)
	is.NoErr(err)
	cache := filepath.Join(t.TempDir(), "license.json")

	for _, jwt := range []string{tok.JWT, rsTok.JWT} {
		c := w.client(t, jwt, cache, func(cfg *client.Config) { cfg.ServerURL = "" }) // air-gapped
		lic, err := c.Check(context.Background())
		is.NoErr(err)
		is.Equal(lic.Source, client.SourceToken)
		is.True(lic.Valid)
		is.Equal(lic.Plan, "business")
		is.Equal(lic.OrganizationID, "org-1")
		is.True(lic.ValidUntil.Equal(tok.ExpiresAt))
	}

	_, err = client.New(client.Config{LicenseKey: tok.JWT[:len(tok.JWT)-4] + "AAAA", PublicKeys: signing.JWKS(), Issuer: "licensing.test"})
	is.True(err != nil) // a tampered token is refused at once
	c := w.client(t, tok.JWT, "", func(cfg *client.Config) { cfg.ServerURL = ""; cfg.Issuer = "someone.else" })
	_, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrTokenInvalid)) // wrong issuer
	late := &clock{t: tok.ExpiresAt.Add(time.Second)}
	c = w.client(t, tok.JWT, "", func(cfg *client.Config) { cfg.ServerURL = ""; cfg.Now = late.Now })
	_, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrTokenExpired))

	// online from time to time: the revocation list drops a revoked token
	online := w.client(t, tok.JWT, cache)
	_, err = online.Check(context.Background())
	is.NoErr(err)
	is.NoErr(w.svc.RevokeKey(context.Background(), w.owner, id))
	lic, err := online.Check(context.Background())
	is.True(errors.Is(err, client.ErrRevoked)) // seen on the next check
	is.True(!lic.Valid)
	w.srv.Close()
	offline := w.client(t, tok.JWT, cache, func(cfg *client.Config) { cfg.ServerURL = "" })
	_, err = offline.Check(context.Background())
	is.True(errors.Is(err, client.ErrRevoked)) // and remembered offline

	// an edited revocation list (its date changed, so its signature fails)
	// is tamper-evident: the token still decides, but the check says the
	// cache failed
	b, err := os.ReadFile(cache)
	is.NoErr(err)
	var doc map[string]any
	is.NoErr(json.Unmarshal(b, &doc))
	doc["revocations"].(map[string]any)["date"] = "Mon, 01 Jan 2001 00:00:00 GMT"
	edited, err := json.Marshal(doc)
	is.NoErr(err)
	is.NoErr(os.WriteFile(cache, edited, 0o600))
	lic, err = offline.Check(context.Background())
	is.NoErr(err) // the token holds
	is.True(errors.Is(lic.Warning, client.ErrCacheInvalid))
	is.Equal(lic.Reason, client.ReasonCacheFailed)
}

func TestRunReportsChangesAndStops(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	changes := make(chan client.License, 10)
	c := w.client(t, key, "", func(cfg *client.Config) {
		cfg.Interval = 10 * time.Millisecond
		cfg.OnChange = func(l client.License) { changes <- l }
	})
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	first := <-changes
	is.Equal(first.Plan, "business") // the first result
	w.orgs.mu.Lock()
	w.orgs.org.Plan = "enterprise"
	w.orgs.mu.Unlock()
	select {
	case l := <-changes:
		is.Equal(l.Plan, "enterprise") // a plan change is reported
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported")
	}
	cancel()
	is.True(errors.Is(<-done, context.Canceled))
	w.srv.CloseClientConnections() // the client's idle keep-alive connection ends too
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	is.True(runtime.NumGoroutine() <= before) // nothing left running
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  client.Config
	}{
		{"no keys", client.Config{ServerURL: "http://x", LicenseKey: "0"}},
		{"bad key", client.Config{ServerURL: "http://x", LicenseKey: "0123", PublicKeys: signing.JWKS()}},
		{"no server for a key", client.Config{LicenseKey: validKey(), PublicKeys: signing.JWKS()}},
		{"relative server", client.Config{ServerURL: "licensing.example.com", LicenseKey: validKey(), PublicKeys: signing.JWKS()}},
		// what the server would refuse at every check, so fail at start
		{"script URL", instance(func(c *client.Config) { c.InstanceURL = "javascript:alert(1)" })},
		{"ftp URL", instance(func(c *client.Config) { c.InstanceURL = "ftp://files.example.com" })},
		{"bare single-label host", instance(func(c *client.Config) { c.InstanceURL = "storno-app:8000" })},
		{"URL with a space", instance(func(c *client.Config) { c.InstanceURL = "http://app example.com" })},
		{"URL port 0", instance(func(c *client.Config) { c.InstanceURL = "http://app.example:0" })},
		{"URL too long", instance(func(c *client.Config) { c.InstanceURL = "https://app.example/" + strings.Repeat("a", 2048) })},
		{"URL holding a key", instance(func(c *client.Config) { c.InstanceURL = "https://app.example/?key=" + c.LicenseKey })},
		{"name with a newline", instance(func(c *client.Config) { c.InstanceName = "prod\nevil" })},
		{"name too long", instance(func(c *client.Config) { c.InstanceName = strings.Repeat("n", 256) })},
		{"name holding a key", instance(func(c *client.Config) { c.InstanceName = "prod " + c.LicenseKey })},
		{"id with a space", instance(func(c *client.Config) { c.InstanceID = "host 1" })},
		{"id too long", instance(func(c *client.Config) { c.InstanceID = strings.Repeat("i", 129) })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			_, err := client.New(tc.cfg)
			is.True(err != nil)
			if tc.cfg.LicenseKey != "" {
				is.True(!strings.Contains(err.Error(), tc.cfg.LicenseKey)) // never the key
			}
		})
	}
}

// instance is a license key's Config changed by mod.
func instance(mod func(*client.Config)) client.Config {
	cfg := client.Config{ServerURL: "https://licensing.example.com", LicenseKey: validKey(), PublicKeys: signing.JWKS()}
	mod(&cfg)
	return cfg
}

// An offline token sends no instance fields, so New does not judge them.
func TestNewLeavesTokenInstanceFieldsAlone(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	id, _ := w.key(t)
	tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
	is.NoErr(err)
	_, err = client.New(client.Config{LicenseKey: tok.JWT, PublicKeys: signing.JWKS(), Issuer: "licensing.test",
		InstanceURL: "storno-app:8000"})
	is.NoErr(err)
}

// received is the world's server behind a recorder of the validate
// requests' bodies.
func received(t *testing.T, w *world) (*httptest.Server, func() map[string]any) {
	t.Helper()
	var mu sync.Mutex
	var last map[string]any
	handler := w.srv.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = nil
		json.Unmarshal(b, &last)
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		handler.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() map[string]any { mu.Lock(); defer mu.Unlock(); return last }
}

// Ordinary configuration never costs the license: an instance URL the
// server accepts is sent as configured, and metrics the server would
// refuse (for which it refuses the whole check) are left out, named in
// License.DroppedMetrics, OnCheck and a Warn line, and the rest reported.
func TestOrdinaryInstanceInputKeepsLicense(t *testing.T) {
	many := map[string]float64{}
	var first32 []string
	for i := range 40 {
		many[fmt.Sprintf("m%02d", i)] = float64(i)
		if i < 32 {
			first32 = append(first32, fmt.Sprintf("m%02d", i))
		}
	}
	var over []string
	for i := 32; i < 40; i++ {
		over = append(over, fmt.Sprintf(`"m%02d": more than 32 metrics`, i))
	}
	anyKey := validKey() // a run of 64 hex digits in a name
	tests := []struct {
		name    string
		url     string
		metrics map[string]float64
		sent    []string // the metric names the server gets
		dropped []string
	}{
		{"docker service URL", "http://storno-app:8000", nil, nil, nil},
		{"intranet URL", "http://facturi/", nil, nil, nil},
		{"underscore host", "http://storno_app.internal:8080/app", nil, nil, nil},
		{"international host", "https://facturi.bücher.example/", nil, nil, nil},
		{"surrounding spaces", "  https://app.example.com ", nil, nil, nil},
		{"bare dotted host", "app.example.com:8443/storno", nil, nil, nil},
		{"localhost", "localhost:8080", nil, nil, nil},
		{"32 metrics", "", pick(many, first32), first32, nil},
		{"40 metrics keep the first 32 by name", "", many, first32, over},
		{"negative", "", map[string]float64{"userCount": 3, "diskFree": -1}, []string{"userCount"},
			[]string{`"diskFree": the value -1 is negative or not finite`}},
		{"not finite", "", map[string]float64{"a": math.NaN(), "b": math.Inf(1), "c": math.Inf(-1), "d": 0},
			[]string{"d"}, []string{`"a": the value NaN is negative or not finite`, `"b": the value +Inf is negative or not finite`,
				`"c": the value -Inf is negative or not finite`}},
		{"bad names", "", map[string]float64{"": 1, "a\nb": 1, strings.Repeat("x", 65): 1, "ok": 1},
			[]string{"ok"}, []string{
				`"": the name is not 1 to 64 characters without control or format characters`,
				`"a\nb": the name is not 1 to 64 characters without control or format characters`,
				`"` + strings.Repeat("x", 64) + `"...: the name is not 1 to 64 characters without control or format characters`}},
		{"names holding a key", "", map[string]float64{anyKey: 1, "ok": 1, "x" + anyKey: 1}, []string{"ok"}, []string{
			"(a name holding a license key): the name holds a license key",
			"(a name holding a license key): the name is not 1 to 64 characters without control or format characters"}},
		{"invalid ones do not count towards 32", "", with(many, "-bad", -1), first32, append([]string{`"-bad": the value -1 is negative or not finite`}, over...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			_, key := w.key(t)
			srv, last := received(t, w)
			var logs logBuffer
			var heard []client.License
			c := w.client(t, key, "", func(cfg *client.Config) {
				cfg.ServerURL = srv.URL
				if tc.url != "" {
					cfg.InstanceURL = tc.url
				}
				if tc.metrics != nil {
					cfg.Metrics = func() map[string]float64 { return tc.metrics }
				}
				cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
				cfg.OnCheck = func(l client.License, err error) { heard = append(heard, l) }
			})
			lic, err := c.Check(context.Background())
			is.NoErr(err) // the license holds
			is.True(lic.Valid)
			is.Equal(lic.Reason, client.ReasonValid)
			is.Equal(lic.DroppedMetrics, tc.dropped) // what was left out, and why
			is.Equal(len(heard), 1)
			is.Equal(heard[0].DroppedMetrics, tc.dropped) // OnCheck hears of it

			req := last()
			if tc.url != "" {
				is.Equal(req["instanceUrl"], tc.url) // sent as configured
			}
			var names []string
			if m, ok := req["metrics"].(map[string]any); ok {
				for name := range m {
					names = append(names, name)
				}
			}
			slices.Sort(names)
			is.Equal(names, tc.sent) // exactly the sendable metrics

			out := logs.String()
			is.Equal(strings.Contains(out, `"level":"WARN"`), tc.dropped != nil)   // a Warn line when metrics were dropped
			is.True(!strings.Contains(out, key) && !strings.Contains(out, anyKey)) // never a key
		})
	}
}

func pick(m map[string]float64, names []string) map[string]float64 {
	out := map[string]float64{}
	for _, n := range names {
		out[n] = m[n]
	}
	return out
}

func with(m map[string]float64, name string, v float64) map[string]float64 {
	out := maps.Clone(m)
	out[name] = v
	return out
}

func validKey() string {
	k, _ := wire.GenerateKey(nil)
	return k
}

// A ServerURL that misses the API's mount point (a bare host for an API
// under /billing/licensing/, or the API path given twice) or a proxy's
// error page is an unexpected status, named with the URL called and what
// ServerURL must be; not a forgery. Like an outage, it keeps the cache.
func TestServerURLUnderASubPath(t *testing.T) {
	w := newWorld(t)
	mux := http.NewServeMux()
	mux.Handle("/billing/licensing/", http.StripPrefix("/billing/licensing", w.srv.Config.Handler))
	billing := httptest.NewServer(mux)
	t.Cleanup(billing.Close)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		rw.WriteHeader(http.StatusBadGateway)
		io.WriteString(rw, "<html><body><h1>502 Bad Gateway</h1></body></html>")
	}))
	t.Cleanup(proxy.Close)
	tests := []struct {
		name      string
		serverURL string
		called    string   // the URL the error names; "" for a valid answer
		says      []string // what the error says besides
	}{
		{"mount point", billing.URL + "/billing/licensing", "", nil},
		{"mount point with a slash", billing.URL + "/billing/licensing/", "", nil},
		{"bare host", billing.URL, billing.URL + "/api/v1/licensing/validate",
			[]string{"status 404 Not Found", "Config.ServerURL (" + billing.URL + ") must be the URL under which the license server serves /api/v1/licensing/"}},
		{"API path twice", billing.URL + "/billing/licensing/api/v1/licensing", billing.URL + "/billing/licensing/api/v1/licensing/api/v1/licensing/validate",
			[]string{"status 404 Not Found", "ends with /api/v1/licensing, which the client adds itself: drop it"}},
		{"proxy's 502 page", proxy.URL, proxy.URL + "/api/v1/licensing/validate",
			[]string{"status 502 Bad Gateway", "a proxy or gateway answered, not the license server", "Config.ServerURL (" + proxy.URL + ")"}},
		// statuses the API uses, but unsigned: the license server signs
		// every answer to this client, so something else answered
		{"a firewall's 403 page", unsigned(t, http.StatusForbidden), "", []string{"status 403 Forbidden", "unsigned", "a proxy, firewall or other application answered"}},
		{"a sign-in proxy's 401", unsigned(t, http.StatusUnauthorized), "", []string{"status 401 Unauthorized", "unsigned"}},
		{"a CDN's 429", unsigned(t, http.StatusTooManyRequests), "", []string{"status 429 Too Many Requests", "unsigned"}},
		{"another API's 400", unsigned(t, http.StatusBadRequest), "", []string{"status 400 Bad Request", "unsigned"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			_, key := w.key(t)
			c := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = tc.serverURL; cfg.Logger = slog.New(slog.DiscardHandler) })
			lic, err := c.Check(context.Background())
			if tc.called == "" && tc.says != nil {
				tc.called = tc.serverURL + "/api/v1/licensing/validate"
			}
			if tc.called == "" {
				is.NoErr(err)
				is.True(lic.Valid)
				return
			}
			is.True(errors.Is(err, client.ErrUnexpectedStatus)) // not ErrUntrusted
			is.True(!errors.Is(err, client.ErrUntrusted))
			is.True(errors.Is(err, client.ErrUnreachable)) // like an outage
			is.Equal(lic.Reason, client.ReasonUnexpectedStatus)
			var se *client.StatusError
			is.True(errors.As(err, &se))
			is.Equal(se.URL, tc.called)
			is.True(strings.Contains(err.Error(), tc.called)) // names the URL called
			for _, s := range tc.says {
				is.True(strings.Contains(err.Error(), s)) // names the status and the fix
			}
			is.True(!strings.Contains(err.Error(), key)) // never the key
		})
	}

	t.Run("keeps the cache", func(t *testing.T) {
		is := is.New(t)
		_, key := w.key(t)
		cache := filepath.Join(t.TempDir(), "license.json")
		_, err := w.client(t, key, cache, func(cfg *client.Config) { cfg.ServerURL = billing.URL + "/billing/licensing" }).Check(context.Background())
		is.NoErr(err)
		lic, err := w.client(t, key, cache, func(cfg *client.Config) { cfg.ServerURL = billing.URL; cfg.Logger = slog.New(slog.DiscardHandler) }).Check(context.Background())
		is.NoErr(err)
		is.True(errors.Is(lic.Warning, client.ErrUnexpectedStatus))
		is.True(lic.Valid) // the cached license holds within grace
		is.Equal(lic.Source, client.SourceCache)
		is.Equal(lic.Reason, client.ReasonUnexpectedStatus)
	})

	t.Run("a password in ServerURL is not repeated", func(t *testing.T) {
		is := is.New(t)
		_, key := w.key(t)
		withPassword := strings.Replace(billing.URL, "http://", "http://vendor:s3cret@", 1)
		_, err := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = withPassword; cfg.Logger = slog.New(slog.DiscardHandler) }).Check(context.Background())
		is.True(errors.Is(err, client.ErrUnexpectedStatus))
		is.True(!strings.Contains(err.Error(), "s3cret")) // errors go to logs
		redacted := strings.Replace(billing.URL, "http://", "http://vendor:xxxxx@", 1)
		is.True(strings.Contains(err.Error(), redacted+"/api/v1/licensing/validate"))

		id, _ := w.key(t)
		tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
		is.NoErr(err)
		late := &clock{t: w.clock.Now().Add(40 * 24 * time.Hour)}
		_, err = w.client(t, tok.JWT, "", func(cfg *client.Config) {
			cfg.ServerURL, cfg.Now, cfg.Logger = withPassword, late.Now, slog.New(slog.DiscardHandler)
		}).Check(context.Background())
		is.True(errors.Is(err, client.ErrRevocationListStale))
		is.True(!strings.Contains(err.Error(), "s3cret"))
	})

	t.Run("offline token", func(t *testing.T) {
		is := is.New(t)
		id, _ := w.key(t)
		tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
		is.NoErr(err)
		lic, err := w.client(t, tok.JWT, "", func(cfg *client.Config) { cfg.ServerURL = billing.URL; cfg.Logger = slog.New(slog.DiscardHandler) }).Check(context.Background())
		is.NoErr(err)
		is.True(lic.Valid)                                          // the token holds
		is.True(errors.Is(lic.Warning, client.ErrUnexpectedStatus)) // and the revocation list's URL is said to be wrong
		is.True(strings.Contains(lic.Warning.Error(), billing.URL+"/api/v1/licensing/revocations"))
	})
}

// unsigned is a server that answers every request with status and an HTML
// page, unsigned, as a firewall, a sign-in proxy or a CDN does.
func unsigned(t *testing.T, status int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html")
		rw.WriteHeader(status)
		io.WriteString(rw, "<html><body>Access denied</body></html>")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The public keys may be the PEM that `licensing-server public-keys` prints
// (SigningKeys.PublicKeysPEM: the RSA key, then the Ed25519 key) or the
// JWKS; anything else is refused, saying what is expected.
func TestPublicKeysAsPEMOrJWKS(t *testing.T) {
	w := newWorld(t)
	id, _ := w.key(t)
	tokens := map[string]string{}
	for _, alg := range []string{licensing.AlgEdDSA, licensing.AlgRS256} {
		tok, err := w.svc.IssueToken(context.Background(), w.owner, id, alg)
		if err != nil {
			t.Fatal(err)
		}
		tokens[alg] = tok.JWT
	}
	bom := []byte("\xef\xbb\xbf") // what Windows editors put before a file saved as UTF-8
	for name, keys := range map[string][]byte{"PEM": signing.PublicKeysPEM(), "JWKS": signing.JWKS(),
		"PEM with blank lines around":  append(append([]byte("\n\n"), signing.PublicKeysPEM()...), "\n\n"...),
		"PEM with CRLF line ends":      bytes.ReplaceAll(signing.PublicKeysPEM(), []byte("\n"), []byte("\r\n")),
		"PEM after a byte order mark":  append(bom, signing.PublicKeysPEM()...),
		"JWKS after a byte order mark": append(bom, signing.JWKS()...),
		"PEM in UTF-16LE":              utf16LE(signing.PublicKeysPEM()), // what Windows PowerShell 5's > writes
		"JWKS in UTF-16BE":             utf16BE(signing.JWKS())} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			_, key := w.key(t)
			lic, err := w.client(t, key, "", func(cfg *client.Config) { cfg.PublicKeys = keys }).Check(context.Background())
			is.NoErr(err) // a signed answer verifies
			is.Equal(lic.Source, client.SourceOnline)
			for _, jwt := range tokens {
				lic, err := w.client(t, jwt, "", func(cfg *client.Config) { cfg.PublicKeys = keys; cfg.ServerURL = "" }).Check(context.Background())
				is.NoErr(err) // an offline token verifies
				is.Equal(lic.Source, client.SourceToken)
			}
		})
	}

	private, err := keyfile.Marshal(mustEd25519(t))
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name string
		keys []byte
		says string
	}{
		{"empty", nil, "Config.PublicKeys is empty"},
		{"text", []byte("kid: abc"), "neither PEM nor JSON"},
		{"a private key", private, `not a "PUBLIC KEY"; never embed a private key`},
		{"a certificate", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), `is a "CERTIFICATE", not a "PUBLIC KEY": `},
		{"a PKCS #1 RSA key", []byte("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n"), `is a "RSA PUBLIC KEY", not a "PUBLIC KEY": `},
		{"text after the PEM", append(signing.PublicKeysPEM(), "trailing"...), "text follows the last block"},
		{"a comment before the PEM", append([]byte("# the vendor's keys\n"), signing.PublicKeysPEM()...), "text before the first PEM block: keep only the blocks"},
		{"JSON that is not a JWKS", []byte(`{"keys": 3}`), "not a JWKS"},
		{"a JWKS without keys", []byte(`{"keys": []}`), "no Ed25519 or RSA signing key"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			_, err := client.New(client.Config{ServerURL: "https://licensing.example.com", LicenseKey: validKey(), PublicKeys: tc.keys})
			is.True(err != nil)
			is.True(strings.Contains(err.Error(), tc.says))                                                // says what is wrong
			is.True(strings.Contains(err.Error(), "as PEM (the output of `licensing-server public-keys`")) // and what is expected
			is.True(strings.Contains(err.Error(), "or as a JWKS"))
		})
	}
}

// utf16LE is ASCII text b in UTF-16LE after its byte order mark.
func utf16LE(b []byte) []byte {
	out := []byte{0xff, 0xfe}
	for _, c := range b {
		out = append(out, c, 0)
	}
	return out
}

// utf16BE is ASCII text b in UTF-16BE after its byte order mark.
func utf16BE(b []byte) []byte {
	out := []byte{0xfe, 0xff}
	for _, c := range b {
		out = append(out, 0, c)
	}
	return out
}

func mustEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A license key that is not set is said to be missing, not "invalid or
// revoked"; a malformed one is not said to be revoked either; a token of
// another issuer names both issuers.
func TestConfigErrorsNameTheFix(t *testing.T) {
	tests := []struct {
		name string
		key  string
		says []string
		not  string
	}{
		{"empty", "", []string{"Config.LicenseKey is empty", "LICENSE_KEY"}, "revoked"},
		{"only spaces", " \n\t", []string{"Config.LicenseKey is empty"}, "revoked"},
		{"malformed", "0123abcd", []string{"Config.LicenseKey (8 characters) is neither a license key (64 hex characters with a valid checksum) nor an offline token"}, "revoked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			_, err := client.New(client.Config{ServerURL: "https://licensing.example.com", LicenseKey: tc.key, PublicKeys: signing.JWKS()})
			is.True(err != nil)
			if tc.key == "" || strings.TrimSpace(tc.key) == "" {
				is.True(errors.Is(err, client.ErrNoLicenseKey))
			}
			for _, s := range tc.says {
				is.True(strings.Contains(err.Error(), s)) // names the cause and the fix
			}
			is.True(!strings.Contains(err.Error(), tc.not))
		})
	}

	t.Run("config", func(t *testing.T) {
		w := newWorld(t)
		id, _ := w.key(t)
		tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgRS256)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := pem.Decode(signing.PublicKeysPEM()) // the RSA key: what a tool reading one block keeps
		rsaOnly := pem.EncodeToMemory(first)
		dir := t.TempDir()
		tests := []struct {
			name string
			mod  func(*client.Config)
			says []string
		}{
			// answers and revocation lists are signed with the Ed25519 key
			// only: without it every check would be "not trusted"
			{"only the RSA key, for a license key", func(c *client.Config) { c.PublicKeys = rsaOnly },
				[]string{"Config.PublicKeys holds no Ed25519 key", "every block that `licensing-server public-keys` prints"}},
			{"only the RSA key, for a token with a ServerURL", func(c *client.Config) { c.LicenseKey, c.PublicKeys, c.Issuer = tok.JWT, rsaOnly, "licensing.test" },
				[]string{"Config.PublicKeys holds no Ed25519 key", "revocation lists"}},
			// the client adds the API path: a query or fragment would swallow it
			{"ServerURL with a query", func(c *client.Config) { c.ServerURL = "https://licensing.example.com/?tenant=1" },
				[]string{"Config.ServerURL must not hold a query or a fragment", "https://licensing.example.com/"}},
			{"ServerURL with an empty query", func(c *client.Config) { c.ServerURL = "https://licensing.example.com?" },
				[]string{"Config.ServerURL must not hold a query or a fragment"}},
			{"ServerURL with a fragment", func(c *client.Config) { c.ServerURL = "https://licensing.example.com/#/licensing" },
				[]string{"Config.ServerURL must not hold a query or a fragment"}},
			// only NoRevocationListMaxAge turns the bound off
			{"a negative RevocationListMaxAge", func(c *client.Config) { c.RevocationListMaxAge = -time.Hour },
				[]string{"Config.RevocationListMaxAge (-1h0m0s) is negative", "client.NoRevocationListMaxAge"}},
			{"CachePath a directory", func(c *client.Config) { c.CachePath = dir },
				[]string{"Config.CachePath (" + dir + ") is a directory, not a regular file", filepath.Join(dir, "license.json")}},
			// meant as "no cache": the first save would rename a file over the device
			{"CachePath a device", func(c *client.Config) { c.CachePath = os.DevNull },
				[]string{"Config.CachePath (" + os.DevNull + ") is a device, not a regular file", `"" keeps nothing`}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				is := is.New(t)
				cfg := client.Config{ServerURL: "https://licensing.example.com", LicenseKey: validKey(), PublicKeys: signing.PublicKeysPEM()}
				tc.mod(&cfg)
				_, err := client.New(cfg)
				is.True(err != nil)
				for _, s := range tc.says {
					is.True(strings.Contains(err.Error(), s)) // names the cause and the fix
				}
				is.True(!strings.Contains(err.Error(), cfg.LicenseKey)) // never the key
			})
		}
		t.Run("only the RSA key, for an air-gapped RS256 token", func(t *testing.T) {
			is := is.New(t)
			c, err := client.New(client.Config{LicenseKey: tok.JWT, PublicKeys: rsaOnly, Issuer: "licensing.test", Now: w.clock.Now})
			is.NoErr(err) // nothing but the token to verify
			lic, err := c.Check(context.Background())
			is.NoErr(err)
			is.True(lic.Valid)
		})
	})

	t.Run("a token signed by a key not embedded", func(t *testing.T) {
		is := is.New(t)
		w := newWorld(t)
		id, _ := w.key(t)
		tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
		is.NoErr(err)
		staging, err := licensing.GenerateSigningKeys(0)
		is.NoErr(err)
		_, err = client.New(client.Config{LicenseKey: tok.JWT, PublicKeys: staging.PublicKeysPEM(), Issuer: "licensing.test"})
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), `the offline token is signed with key "`+signing.KeyID()+`", which Config.PublicKeys does not hold (it holds `+staging.KeyID()+")")) // not "malformed"
		is.True(strings.Contains(err.Error(), "embed the public keys of the license server that issued the token"))
		is.True(!strings.Contains(err.Error(), tok.JWT[strings.LastIndex(tok.JWT, ".")+1:])) // never the token
	})

	t.Run("issuer", func(t *testing.T) {
		is := is.New(t)
		w := newWorld(t)
		id, _ := w.key(t)
		tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
		is.NoErr(err)
		c := w.client(t, tok.JWT, "", func(cfg *client.Config) {
			cfg.ServerURL, cfg.Issuer, cfg.Logger = "", "licensing.example.com", slog.New(slog.DiscardHandler)
		})
		_, err = c.Check(context.Background())
		is.True(errors.Is(err, client.ErrTokenInvalid))
		is.True(strings.Contains(err.Error(), `its issuer is "licensing.test", Config.Issuer is "licensing.example.com"`)) // both issuers
		is.True(strings.Contains(err.Error(), "set Config.Issuer"))                                                        // and the fix
	})
}
