package client

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// offline is a transport with no server behind it.
type offline struct{}

func (offline) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in this test")
}

// cacheWorld is a key client and a token client whose server cannot be
// reached, so that Check has only the cache file to go on, and the time
// at which the seeds' answers are fresh.
type cacheWorld struct {
	key, token *Client
	now        time.Time
	date       string
}

func newCacheWorld(t testing.TB, path string) cacheWorld {
	t.Helper()
	body := "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	sum := wire.KeyChecksum([]byte(body))
	now := time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)
	base := Config{PublicKeys: jwksDoc(edJWK("k1", ksEd.Public().(ed25519.PublicKey))), CachePath: path,
		HTTPClient: &http.Client{Transport: offline{}}, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now }, Issuer: "i"}
	kc := base
	kc.ServerURL, kc.LicenseKey = "http://licensing.invalid", body+string(sum[:])
	key, err := New(kc)
	if err != nil {
		t.Fatal(err)
	}
	tc := base
	tc.LicenseKey = signedTokenClaims(`{"iss":"i","sub":"org","jti":"t1","plan":"p","iat":1771500000,"exp":1893456000}`)
	token, err := New(tc)
	if err != nil {
		t.Fatal(err)
	}
	return cacheWorld{key: key, token: token, now: now, date: now.Add(-time.Hour).Format(http.TimeFormat)}
}

// signedTokenClaims is an EdDSA token of claims, signed by ksEd as kid k1.
func signedTokenClaims(claims string) string {
	h, _ := json.Marshal(wire.JWTHeader{Alg: wire.AlgEdDSA, Typ: "JWT", Kid: "k1"})
	input := b64(h) + "." + b64([]byte(claims))
	return input + "." + b64(ed25519.Sign(ksEd, []byte(input)))
}

// signed is an answer signed by ksEd as kid k1.
func signed(status int, date, body string) *signedAnswer {
	sig := wire.FormatSignature("k1", ed25519.Sign(ksEd, wire.SignedString(status, "k1", date, []byte(body))))
	return &signedAnswer{Status: status, Date: date, Signature: sig, Body: []byte(body)}
}

// cacheSeeds are cache files: ones the clients wrote (a valid answer for
// the key client, a revocation list for the token client), then damaged
// and hostile ones.
func cacheSeeds(w cacheWorld) [][]byte {
	enc := func(st cacheState) []byte {
		st.Version = 1
		b, _ := json.MarshalIndent(st, "", "  ")
		return b
	}
	keyNonce, tokenNonce := w.key.nonce(), w.token.nonce()
	good := signed(200, w.date, `{"valid":true,"plan":"business","features":{"a":1},"nonce":"`+keyNonce+`"}`)
	revoked := signed(200, w.date, `{"organizationId":"org","revoked":["t1"],"nonce":"`+tokenNonce+`"}`)
	forged := *good
	forged.Body = []byte(strings.Replace(string(good.Body), "business", "enterprise", 1))
	otherKey := signed(200, w.date, `{"valid":true,"plan":"business","nonce":"`+w.token.nonce()+`"}`)
	wrongStatus := *good
	wrongStatus.Status = 201
	return [][]byte{
		enc(cacheState{InstanceID: "i-1", LatestSeen: w.now.Add(-time.Hour), Answer: good}),
		enc(cacheState{LatestSeen: w.now.Add(-time.Hour), Revocations: revoked}),
		enc(cacheState{Answer: &forged}),
		enc(cacheState{Answer: otherKey}),
		enc(cacheState{Answer: &wrongStatus}),
		enc(cacheState{Answer: good, ClockSkew: 1<<63 - 1, LatestSeen: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}),
		enc(cacheState{Answer: good, ClockSkew: -1 << 63}),
		enc(cacheState{Answer: &signedAnswer{Status: 200, Date: "", Signature: "", Body: nil}}),
		[]byte(`{"version":2}`), []byte(`{"version":1,"answer":null,"revocations":{}}`),
		[]byte(`{"version":1,"latestSeen":"0000-01-01T00:00:00Z","clockSkew":-9223372036854775808}`),
		[]byte(`{"version":1,"answer":{"status":-1,"date":"x","signature":"kid=\"k1\"","body":"!!"}}`),
		[]byte(`{"version":1} trailing`), []byte(`[]`), []byte(`null`), []byte(``), []byte("\x00\xff"),
	}
}

// checkCache is the property of a cache file: loading it never panics; a
// file it keeps is version 1, and its answer and revocation list, when
// present, carry the key's signature over their exact bytes; a file it
// refuses gives ErrCacheInvalid and keeps neither. Check, with the server
// unreachable, then grants a valid license only from a signed answer of
// this client's, and drops the token only on a signed list naming it.
func checkCache(t *testing.T, w cacheWorld, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	verified := func(a *signedAnswer) bool {
		kid, sig, err := wire.ParseSignature(a.Signature)
		return err == nil && kid == "k1" && ed25519.Verify(ksEd.Public().(ed25519.PublicKey), wire.SignedString(a.Status, kid, a.Date, a.Body), sig)
	}
	for _, c := range []*Client{w.key, w.token} {
		st, err := c.loadCache()
		if err != nil {
			if !errors.Is(err, ErrCacheInvalid) {
				t.Fatalf("refused with %v, not ErrCacheInvalid", err)
			}
			if st.Answer != nil || st.Revocations != nil {
				t.Fatal("a refused cache file kept its answers")
			}
		} else {
			if st.Version != 1 {
				t.Fatalf("kept a cache file of version %d", st.Version)
			}
			if st.Answer != nil && !verified(st.Answer) {
				t.Fatalf("kept an answer without the key's signature: %+v", st.Answer)
			}
			if st.Revocations != nil && c.token && !verified(st.Revocations) {
				t.Fatalf("kept a revocation list without the key's signature: %+v", st.Revocations)
			}
		}
		// what a Check makes of it (it may rewrite the file: put it back)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		lic, err := c.Check(context.Background())
		if (err == nil) != lic.Valid || (lic.Warning != nil && err != nil) {
			t.Fatalf("Check's contract broken: valid %v, err %v, warning %v", lic.Valid, err, lic.Warning)
		}
		switch {
		case c == w.key && lic.Valid:
			if lic.Source != SourceCache || lic.Warning == nil || st.Answer == nil || !verified(st.Answer) {
				t.Fatalf("valid license (source %s, warning %v) without a signed cached answer", lic.Source, lic.Warning)
			}
			if _, aerr := c.answerLicense(*st.Answer); aerr != nil {
				t.Fatalf("valid license from an answer that is not this client's: %v", aerr)
			}
		case c == w.token && errors.Is(err, ErrRevoked):
			if st.Revocations == nil || !verified(st.Revocations) {
				t.Fatal("token dropped without a signed revocation list")
			}
		case c == w.token && !lic.Valid && !errors.Is(err, ErrClockRollback) && !errors.Is(err, ErrTokenExpired):
			t.Fatalf("token refused for %v", err)
		}
	}
}

// FuzzLoadCache feeds arbitrary cache files to a key client and a token
// client: see checkCache for the property.
func FuzzLoadCache(f *testing.F) {
	dir := f.TempDir()
	w := newCacheWorld(f, filepath.Join(dir, "license.json"))
	for _, s := range cacheSeeds(w) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkCache(t, w, filepath.Join(dir, "license.json"), data)
	})
}

// TestLoadCacheHardCases: the seeds, with what each must give, so that a
// plain go test covers them.
func TestLoadCacheHardCases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "license.json")
	w := newCacheWorld(t, path)
	seeds := cacheSeeds(w)
	tests := []struct {
		name    string
		client  *Client
		valid   bool   // the license holds (from the cache, or the token): Check's error is nil
		wantErr error  // errors.Is of Check's error, or of License.Warning when valid
		plan    string // "" for the fallback
	}{
		{"the key client's signed answer", w.key, true, ErrUnreachable, "business"},
		{"a signed list revoking the token", w.token, false, ErrRevoked, "community"},
		{"an edited plan", w.key, false, ErrCacheInvalid, "community"},
		{"another key's answer", w.key, false, ErrCacheInvalid, "community"},
		{"an edited status", w.key, false, ErrCacheInvalid, "community"},
		{"latest seen in 9999: clock rolled back", w.key, false, ErrClockRollback, "community"},
		{"the most negative skew is no skew", w.key, true, ErrUnreachable, "business"},
		{"an empty answer", w.key, false, ErrCacheInvalid, "community"},
		{"version 2", w.key, false, ErrCacheInvalid, "community"},
		{"an empty revocation list: the token holds", w.token, true, ErrCacheInvalid, "p"}, // reported: the list it held is lost
		{"year 0, most negative skew: the token holds", w.token, true, nil, "p"},
		{"negative status", w.key, false, ErrCacheInvalid, "community"},
		{"trailing data", w.key, false, ErrCacheInvalid, "community"},
		{"an array", w.key, false, ErrCacheInvalid, "community"},
		{"null", w.key, false, ErrCacheInvalid, "community"},
		{"empty: the token holds", w.token, true, ErrCacheInvalid, "p"},
		{"binary", w.key, false, ErrCacheInvalid, "community"},
	}
	is := is.New(t)
	is.Equal(len(tests), len(seeds)) // every seed is a case
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			checkCache(t, w, path, seeds[i])
			is.NoErr(os.WriteFile(path, seeds[i], 0o600))
			lic, err := tc.client.Check(context.Background())
			is.Equal(lic.Valid, tc.valid)
			is.Equal(lic.Plan, tc.plan)
			is.Equal(err == nil, tc.valid) // an error exactly when the license is not usable
			if err == nil {
				err = lic.Warning
			}
			if tc.wantErr == nil {
				is.NoErr(err)
			} else {
				is.True(errors.Is(err, tc.wantErr)) // the expected error
			}
		})
	}
}
