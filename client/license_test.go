package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/client"
)

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type checked struct {
	lic client.License
	err error
}

// tamper is a proxy in front of the world's server that rewrites answers.
func tamper(t *testing.T, w *world) *httptest.Server {
	t.Helper()
	u, _ := url.Parse(w.srv.URL)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(res *http.Response) error {
		b, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		b = bytes.ReplaceAll(b, []byte(`"business"`), []byte(`"enterprise"`))
		res.Body = io.NopCloser(bytes.NewReader(b))
		res.ContentLength = int64(len(b))
		res.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

// Every kind of failure says why, on the License, to OnCheck and in the log.
func TestReasons(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, w *world) (key string, mod func(*client.Config))
		reason  client.Reason
		sentry  error  // the error Check returns, nil for none
		message string // the server's text, "" for none, "*" for any (the vendor words it)
		valid   bool
	}{
		{"valid", func(t *testing.T, w *world) (string, func(*client.Config)) {
			_, key := w.key(t)
			return key, nil
		}, client.ReasonValid, nil, "", true},
		{"revoked key", func(t *testing.T, w *world) (string, func(*client.Config)) {
			id, key := w.key(t)
			if err := w.svc.RevokeKey(context.Background(), w.owner, id); err != nil {
				t.Fatal(err)
			}
			return key, nil
		}, client.ReasonRevokedOrUnknown, client.ErrInvalidKey, "Invalid or revoked license key", false},
		{"unknown key", func(t *testing.T, w *world) (string, func(*client.Config)) {
			return validKey(), nil
		}, client.ReasonRevokedOrUnknown, client.ErrInvalidKey, "Invalid or revoked license key", false},
		{"inactive organization", func(t *testing.T, w *world) (string, func(*client.Config)) {
			_, key := w.key(t)
			w.orgs.org.Active = false
			return key, nil
		}, client.ReasonOrganizationInactive, client.ErrInactive, "Organization is inactive", false},
		{"plan not eligible", func(t *testing.T, w *world) (string, func(*client.Config)) {
			_, key := w.key(t)
			w.orgs.org.Plan, w.orgs.org.Features = "starter", map[string]any{"selfHostingLicense": false}
			return key, nil
		}, client.ReasonPlanNotEligible, client.ErrPlanNotEligible, "*", false},
		{"request rejected", func(t *testing.T, w *world) (string, func(*client.Config)) {
			_, key := w.key(t)
			// The client sends nothing the server's rules refuse, so this
			// server's rules are stricter: it refuses every instanceUrl.
			handler := w.srv.Config.Handler
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				var req map[string]any
				json.NewDecoder(r.Body).Decode(&req)
				req["instanceUrl"] = "javascript:alert(1)"
				b, _ := json.Marshal(req)
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
				handler.ServeHTTP(rw, r)
			}))
			t.Cleanup(srv.Close)
			return key, func(cfg *client.Config) { cfg.ServerURL = srv.URL }
		}, client.ReasonRequestRejected, client.ErrRejected, "*", false},
		{"unreachable server", func(t *testing.T, w *world) (string, func(*client.Config)) {
			_, key := w.key(t)
			w.srv.Close()
			return key, nil
		}, client.ReasonServerUnreachable, client.ErrUnreachable, "", false},
		{"tampered answer", func(t *testing.T, w *world) (string, func(*client.Config)) {
			_, key := w.key(t)
			proxy := tamper(t, w)
			return key, func(cfg *client.Config) { cfg.ServerURL = proxy.URL }
		}, client.ReasonUntrustedAnswer, client.ErrUntrusted, "", false},
		{"tampered signature", func(t *testing.T, w *world) (string, func(*client.Config)) {
			_, key := w.key(t)
			handler := w.srv.Config.Handler
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, r)
				for k, v := range rec.Header() {
					rw.Header()[k] = v
				}
				sig := rec.Header().Get("Licensing-Signature")
				i := strings.Index(sig, `sig="`) + 5
				flipped := "A"
				if sig[i] == 'A' {
					flipped = "B"
				}
				rw.Header().Set("Licensing-Signature", sig[:i]+flipped+sig[i+1:])
				rw.WriteHeader(rec.Code)
				rw.Write(rec.Body.Bytes())
			}))
			t.Cleanup(srv.Close)
			return key, func(cfg *client.Config) { cfg.ServerURL = srv.URL }
		}, client.ReasonUntrustedAnswer, client.ErrUntrusted, "", false},
		{"clock rolled back", func(t *testing.T, w *world) (string, func(*client.Config)) {
			_, key := w.key(t)
			cache := filepath.Join(t.TempDir(), "license.json")
			if _, err := w.client(t, key, cache).Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			w.srv.Close()
			back := &clock{t: w.clock.Now().Add(-48 * time.Hour)}
			return key, func(cfg *client.Config) { cfg.CachePath = cache; cfg.Now = back.Now }
		}, client.ReasonClockRolledBack, client.ErrClockRollback, "", false},
		{"rate limited", func(t *testing.T, w *world) (string, func(*client.Config)) {
			_, key := w.key(t)
			svc, err := licensing.New(licensing.Config{Store: licensing.NewMemoryStore(), Organizations: w.orgs,
				Pepper: bytes.Repeat([]byte{3}, 32), Signing: signing, Now: w.clock.Now, Policy: licensing.Policy{Issuer: "licensing.test"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { svc.Close(context.Background()) })
			srv := httptest.NewServer(licensing.NewHandler(svc, licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
				return licensing.Actor{}, licensing.ErrUnauthorized
			}), licensing.HandlerConfig{RateLimit: 1, RateBurst: 1}))
			t.Cleanup(srv.Close)
			http.Post(srv.URL+"/api/v1/licensing/validate", "application/json", strings.NewReader(`{}`)) // uses the burst
			return key, func(cfg *client.Config) { cfg.ServerURL = srv.URL }
		}, client.ReasonRateLimited, nil, "Too many requests.", false},
		{"expired token", func(t *testing.T, w *world) (string, func(*client.Config)) {
			id, _ := w.key(t)
			tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
			if err != nil {
				t.Fatal(err)
			}
			late := &clock{t: tok.ExpiresAt.Add(time.Second)}
			return tok.JWT, func(cfg *client.Config) { cfg.ServerURL = ""; cfg.Now = late.Now }
		}, client.ReasonTokenExpired, client.ErrTokenExpired, "", false},
		{"revoked token", func(t *testing.T, w *world) (string, func(*client.Config)) {
			id, _ := w.key(t)
			tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.svc.RevokeKey(context.Background(), w.owner, id); err != nil {
				t.Fatal(err)
			}
			return tok.JWT, nil
		}, client.ReasonTokenRevoked, client.ErrRevoked, "", false},
		{"token of another issuer", func(t *testing.T, w *world) (string, func(*client.Config)) {
			id, _ := w.key(t)
			tok, err := w.svc.IssueToken(context.Background(), w.owner, id, licensing.AlgEdDSA)
			if err != nil {
				t.Fatal(err)
			}
			return tok.JWT, func(cfg *client.Config) { cfg.Issuer = "someone.else" }
		}, client.ReasonTokenInvalid, client.ErrTokenInvalid, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			key, mod := tc.setup(t, w)
			var logs logBuffer
			var got []checked
			c := w.client(t, key, "", func(cfg *client.Config) {
				if mod != nil {
					mod(cfg)
				}
				cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				cfg.OnCheck = func(l client.License, err error) { got = append(got, checked{l, err}) }
			})
			lic, err := c.Check(context.Background())
			is.Equal(lic.Reason, tc.reason) // the reason
			is.Equal(lic.Valid, tc.valid)
			if tc.message == "*" {
				is.True(lic.ServerMessage != "") // the server's own words
			} else {
				is.Equal(lic.ServerMessage, tc.message) // the server's own words
			}
			if tc.sentry != nil {
				is.True(errors.Is(err, tc.sentry)) // and the error
			}
			is.Equal((err == nil), (tc.reason == client.ReasonValid))
			var rl *client.RateLimitedError
			is.Equal(errors.As(err, &rl), tc.reason == client.ReasonRateLimited)

			is.Equal(len(got), 1) // OnCheck heard of it, once
			is.Equal(got[0].lic.Reason, lic.Reason)
			is.Equal(got[0].err, err)

			out := logs.String()
			is.True(strings.Contains(out, `"reason":"`+string(tc.reason)+`"`)) // logged with its reason
			is.Equal(strings.Contains(out, `"level":"WARN"`), err != nil)      // failures at Warn
			is.True(!strings.Contains(out, key))                               // never the key
			if lic.ServerMessage != "" {
				is.True(strings.Contains(out, `"serverMessage":`)) // with the server's words
			}
		})
	}
}

// Offline, the reason says why the license is not fresh, and a remembered
// refusal keeps the server's words.
func TestReasonsOffline(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	id, key := w.key(t)
	cache := filepath.Join(t.TempDir(), "license.json")
	c := w.client(t, key, cache, func(cfg *client.Config) { cfg.Logger = slog.New(slog.DiscardHandler) })
	_, err := c.Check(context.Background())
	is.NoErr(err)
	w.srv.Close()
	lic, err := c.Check(context.Background())
	is.NoErr(err)                                          // usable,
	is.True(errors.Is(lic.Warning, client.ErrUnreachable)) // and not fresh
	is.Equal(lic.Reason, client.ReasonServerUnreachable)   // within grace: still valid, and not fresh
	is.True(lic.Valid)
	is.Equal(lic.Source, client.SourceCache)

	w = newWorld(t)
	id, key = w.key(t)
	c = w.client(t, key, cache, func(cfg *client.Config) { cfg.Logger = slog.New(slog.DiscardHandler) })
	is.NoErr(w.svc.RevokeKey(context.Background(), w.owner, id))
	_, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrInvalidKey))
	w.srv.Close()
	lic, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrInvalidKey))
	is.True(errors.Is(err, client.ErrUnreachable))
	is.Equal(lic.Reason, client.ReasonRevokedOrUnknown) // the refusal outranks the outage
	is.Equal(lic.ServerMessage, "Invalid or revoked license key")
	is.True(!lic.Valid)
}

func TestRunTellsEveryFailure(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	w.srv.Close()
	checks := make(chan checked, 100)
	c := w.client(t, key, "", func(cfg *client.Config) {
		cfg.Interval = time.Millisecond
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.OnCheck = func(l client.License, err error) {
			select {
			case checks <- checked{l, err}:
			default:
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	for range 3 {
		ch := <-checks
		is.Equal(ch.lic.Reason, client.ReasonServerUnreachable) // each failure is told
		is.True(errors.Is(ch.err, client.ErrUnreachable))
	}
	cancel()
	is.True(errors.Is(<-done, context.Canceled)) // Run still returns only ctx.Err()
}
