// Package client is the half of licensing that a self-hosted product embeds:
// it proves the product's license to the vendor's server and learns its plan,
// online or offline. It uses only the standard library.
//
//	c, err := client.New(client.Config{
//		ServerURL:  "https://licensing.example.com",
//		LicenseKey: os.Getenv("LICENSE_KEY"), // a 64-hex key or an offline token
//		PublicKeys: jwks,                     // the server's JWKS, embedded at build time
//		Issuer:     "licensing.example.com",
//		CachePath:  "/var/lib/product/license.json",
//	})
//	if err != nil { ... }
//	go c.Run(ctx) // checks now and every 24h; OnChange tells about plan changes
//
// # Trust
//
// Online answers are trusted only when signed by one of PublicKeys over the
// exact body, the status and the HTTP date, and when they echo the nonce of
// the request (derived from the license key, so an answer for one key cannot
// serve another). The cache file holds those signed bytes and is verified on
// every read, so editing it is useless. When the server cannot be reached
// the last good answer counts for GracePeriod after the server signed it;
// then FallbackPlan applies. A local clock set back before the latest time
// the client has seen is an error, not a longer license. Offline tokens
// (JWTs) are verified with PublicKeys, the issuer and expiry checked, and
// dropped once a signed revocation list names them.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Config configures a Client; New fills in the defaults.
type Config struct {
	ServerURL  string // the license server; the API path is added
	LicenseKey string // a 64-hex license key, or an offline token (JWT)
	PublicKeys []byte // the server's JWKS (GET /api/v1/licensing/public-keys), embedded in the product
	Issuer     string // the iss that offline tokens must carry; required for tokens
	CachePath  string // file for the last signed answer (mode 0600); "" keeps nothing

	InstanceName string
	InstanceURL  string
	// InstanceID identifies this installation to the server (sharing
	// detection). Default: a random id made once and kept in the cache file.
	InstanceID string
	// Metrics, when set, is called before each online check; its counters
	// are reported to the server (at most 32).
	Metrics func() map[string]float64

	Interval       time.Duration // Run's period; default 24h
	GracePeriod    time.Duration // how long the last good answer outlives an unreachable server; default 7 days
	FallbackPlan   string        // the plan when no license holds; default "community"
	ClockTolerance time.Duration // clock drift accepted before ErrClockRollback; default 1h
	HTTPClient     *http.Client  // default: 30 s timeout
	// OnChange is called by Run when the license's validity, plan or
	// features change (and once with the first result).
	OnChange func(License)
	Now      func() time.Time // for tests; default time.Now
}

// Source says where a License came from.
type Source string

// Sources of a License.
const (
	SourceOnline   Source = "online"   // a fresh signed answer
	SourceCache    Source = "cache"    // the last signed answer, within the grace period
	SourceToken    Source = "token"    // a verified offline token
	SourceFallback Source = "fallback" // nothing holds: Config.FallbackPlan
)

// License is what the product should apply now.
type License struct {
	Valid            bool
	Plan             string
	Features         map[string]any
	OrganizationID   string
	OrganizationName string
	Violations       []string
	CurrentPeriodEnd time.Time
	TrialEndsAt      time.Time
	TrialDaysLeft    int
	BillingURL       string
	Source           Source
	// CheckedAt is when the server vouched for this license: the signed date
	// of the answer, or the token's iat.
	CheckedAt time.Time
	// ValidUntil is when this license stops counting without a new check:
	// CheckedAt + GracePeriod for answers, exp for tokens.
	ValidUntil time.Time
}

// Errors of Check. Every failing Check still returns the License to apply
// (the cache within grace, or the fallback).
var (
	ErrInvalidKey      = errors.New("client: license key is invalid or revoked")
	ErrRevoked         = errors.New("client: offline token is revoked")
	ErrInactive        = errors.New("client: organization is inactive")
	ErrPlanNotEligible = errors.New("client: plan does not include self-hosting")
	ErrUnreachable     = errors.New("client: license server unreachable")
	ErrUntrusted       = errors.New("client: answer not trusted (bad signature, nonce or date)")
	ErrTokenExpired    = errors.New("client: offline token expired")
	ErrTokenInvalid    = errors.New("client: offline token invalid")
	ErrClockRollback   = errors.New("client: the local clock is earlier than a time already seen; refusing to extend the license")
	ErrCacheInvalid    = errors.New("client: cache file is damaged or was edited; ignored")
)

// RateLimitedError says the server asked to wait.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("client: rate limited; retry after %s", e.RetryAfter)
}

// Client checks one license. It is safe for concurrent use; it holds no
// global state and starts no goroutine outside Run.
type Client struct {
	cfg    Config
	keys   keySet
	token  bool // LicenseKey is an offline token
	claims tokenClaims
}

// New checks cfg and returns a Client. Bad public keys, a malformed license
// key or an unverifiable token are errors here, not at the first check.
func New(cfg Config) (*Client, error) {
	ks, err := parseJWKS(cfg.PublicKeys)
	if err != nil {
		return nil, err
	}
	cfg.LicenseKey = strings.TrimSpace(cfg.LicenseKey)
	c := &Client{keys: ks}
	switch {
	case strings.Count(cfg.LicenseKey, ".") == 2:
		c.token = true
		if c.claims, err = parseToken(ks, cfg.LicenseKey); err != nil {
			return nil, err
		}
		if cfg.Issuer == "" {
			return nil, errors.New("client: Config.Issuer is required to check offline tokens")
		}
	case keyLooksValid(cfg.LicenseKey):
		cfg.LicenseKey = strings.ToLower(cfg.LicenseKey)
		if cfg.ServerURL == "" {
			return nil, errors.New("client: Config.ServerURL is required for a license key")
		}
	default:
		return nil, fmt.Errorf("%w: not a 64-character key with a valid checksum, nor a token", ErrInvalidKey)
	}
	if cfg.ServerURL != "" {
		u, err := url.Parse(cfg.ServerURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("client: Config.ServerURL must be an absolute http or https URL")
		}
		cfg.ServerURL = strings.TrimRight(cfg.ServerURL, "/")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 24 * time.Hour
	}
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = 7 * 24 * time.Hour
	}
	if cfg.FallbackPlan == "" {
		cfg.FallbackPlan = "community"
	}
	if cfg.ClockTolerance <= 0 {
		cfg.ClockTolerance = time.Hour
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c.cfg = cfg
	return c, nil
}

func (c *Client) fallback(now time.Time) License {
	return License{Plan: c.cfg.FallbackPlan, Features: map[string]any{}, Source: SourceFallback, CheckedAt: now}
}

// Check establishes the license now: online when it can, else from the
// cache or the offline token. It always returns the License to apply; err
// says why that is not a fresh, valid online answer.
func (c *Client) Check(ctx context.Context) (License, error) {
	now := c.cfg.Now()
	st, cacheErr := c.loadCache()
	if latest := st.latestSeen(); !latest.IsZero() && now.Before(latest.Add(-c.cfg.ClockTolerance)) {
		return c.fallback(now), fmt.Errorf("%w (latest seen %s)", ErrClockRollback, latest.UTC().Format(time.RFC3339))
	}
	if c.token {
		return c.checkToken(ctx, now, st)
	}
	lic, err := c.checkOnline(ctx, now, &st)
	if err == nil || errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrInactive) || errors.Is(err, ErrPlanNotEligible) {
		return lic, err
	}
	// Unreachable, untrusted or rate limited: the last good answer, within grace.
	if cacheErr != nil {
		return c.fallback(now), errors.Join(err, cacheErr)
	}
	if st.Answer != nil {
		cached, cerr := c.answerLicense(*st.Answer)
		if cerr == nil {
			cached.Source = SourceCache
			if !cached.Valid {
				return c.fallback(now), errors.Join(err, c.answerError(*st.Answer))
			}
			if now.Before(cached.ValidUntil) {
				return cached, err
			}
		}
	}
	return c.fallback(now), err
}

// nonce returns a fresh nonce bound to the license key: r "." H(r, key).
func (c *Client) nonce() string {
	var b [16]byte
	rand.Read(b[:])
	r := hex.EncodeToString(b[:])
	return r + "." + c.nonceMAC(r)
}

func (c *Client) nonceMAC(r string) string {
	sum := sha256.Sum256([]byte("licensing-nonce\n" + r + "\n" + c.cfg.LicenseKey))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// ourNonce reports whether n was made by this client for its key.
func (c *Client) ourNonce(n string) bool {
	r, mac, ok := strings.Cut(n, ".")
	return ok && len(r) == 32 && mac == c.nonceMAC(r)
}

// signedAnswer is an answer as the server signed it, kept in the cache.
type signedAnswer struct {
	Status    int    `json:"status"`
	Date      string `json:"date"`
	Signature string `json:"signature"`
	Body      []byte `json:"body"`
}

func (c *Client) checkOnline(ctx context.Context, now time.Time, st *cacheState) (License, error) {
	nonce := c.nonce()
	req := map[string]any{"licenseKey": c.cfg.LicenseKey, "nonce": nonce}
	if c.cfg.InstanceName != "" {
		req["instanceName"] = c.cfg.InstanceName
	}
	if c.cfg.InstanceURL != "" {
		req["instanceUrl"] = c.cfg.InstanceURL
	}
	if id := c.instanceID(st); id != "" {
		req["instanceId"] = id
	}
	if c.cfg.Metrics != nil {
		if m := c.cfg.Metrics(); len(m) > 0 {
			req["metrics"] = m
		}
	}
	body, _ := json.Marshal(req)
	ans, retry, err := c.post(ctx, "/api/v1/licensing/validate", body)
	if err != nil {
		return License{}, err
	}
	if ans.Status >= 500 {
		return License{}, fmt.Errorf("%w: status %d", ErrUnreachable, ans.Status)
	}
	if err := c.trust(ans, nonce, now); err != nil {
		return License{}, err
	}
	if ans.Status == http.StatusTooManyRequests {
		return License{}, &RateLimitedError{RetryAfter: retry}
	}
	if ans.Status != http.StatusOK && ans.Status != http.StatusUnauthorized && ans.Status != http.StatusForbidden {
		return License{}, fmt.Errorf("%w: status %d: %s", ErrUnreachable, ans.Status, snippet(ans.Body))
	}
	lic, err := c.answerLicense(ans)
	if err != nil {
		return License{}, err
	}
	st.Answer = &ans
	st.see(lic.CheckedAt)
	st.see(now)
	if err := c.saveCache(*st); err != nil {
		return License{}, err
	}
	if !lic.Valid {
		return c.fallback(now), c.answerError(ans)
	}
	lic.Source = SourceOnline
	return lic, nil
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return strings.TrimSpace(string(b))
}

// trust checks signature, nonce and date of a fresh answer.
func (c *Client) trust(ans signedAnswer, nonce string, now time.Time) error {
	if err := c.keys.verifyAnswer(ans.Status, ans.Signature, ans.Date, ans.Body); err != nil {
		return fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	var b struct {
		Nonce string `json:"nonce"`
	}
	if json.Unmarshal(ans.Body, &b) != nil || b.Nonce != nonce {
		return fmt.Errorf("%w: the answer is not for this request (replayed?)", ErrUntrusted)
	}
	date, err := http.ParseTime(ans.Date)
	if err != nil {
		return fmt.Errorf("%w: no valid date", ErrUntrusted)
	}
	if d := date.Sub(now); d > c.cfg.ClockTolerance+time.Minute || -d > c.cfg.ClockTolerance+time.Minute {
		return fmt.Errorf("%w: server date %s is far from the local clock", ErrUntrusted, ans.Date)
	}
	return nil
}

// answerLicense verifies a (fresh or cached) signed answer and turns it into
// a License. It checks the signature and that the nonce is this client's.
func (c *Client) answerLicense(ans signedAnswer) (License, error) {
	if err := c.keys.verifyAnswer(ans.Status, ans.Signature, ans.Date, ans.Body); err != nil {
		return License{}, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	var b struct {
		Valid            bool           `json:"valid"`
		Plan             string         `json:"plan"`
		Features         map[string]any `json:"features"`
		OrganizationID   string         `json:"organizationId"`
		OrganizationName string         `json:"organizationName"`
		Violations       []string       `json:"violations"`
		CurrentPeriodEnd string         `json:"currentPeriodEnd"`
		TrialEndsAt      string         `json:"trialEndsAt"`
		TrialDaysLeft    int            `json:"trialDaysLeft"`
		BillingURL       string         `json:"billingUrl"`
		Nonce            string         `json:"nonce"`
	}
	if err := json.Unmarshal(ans.Body, &b); err != nil {
		return License{}, fmt.Errorf("%w: body: %v", ErrUntrusted, err)
	}
	if !c.ourNonce(b.Nonce) {
		return License{}, fmt.Errorf("%w: the answer was not made for this license key", ErrUntrusted)
	}
	date, err := http.ParseTime(ans.Date)
	if err != nil {
		return License{}, fmt.Errorf("%w: no valid date", ErrUntrusted)
	}
	lic := License{
		Valid: ans.Status == http.StatusOK && b.Valid, Plan: b.Plan, Features: b.Features,
		OrganizationID: b.OrganizationID, OrganizationName: b.OrganizationName, Violations: b.Violations,
		TrialDaysLeft: b.TrialDaysLeft, BillingURL: b.BillingURL,
		CheckedAt: date, ValidUntil: date.Add(c.cfg.GracePeriod),
	}
	lic.CurrentPeriodEnd, _ = time.Parse(time.RFC3339, b.CurrentPeriodEnd)
	lic.TrialEndsAt, _ = time.Parse(time.RFC3339, b.TrialEndsAt)
	if lic.Features == nil {
		lic.Features = map[string]any{}
	}
	return lic, nil
}

// answerError maps a verified refusal to its error.
func (c *Client) answerError(ans signedAnswer) error {
	var b struct {
		Error string `json:"error"`
		Plan  string `json:"plan"`
	}
	json.Unmarshal(ans.Body, &b)
	switch {
	case ans.Status == http.StatusUnauthorized:
		return ErrInvalidKey
	case ans.Status == http.StatusForbidden && b.Plan != "":
		return fmt.Errorf("%w: %s", ErrPlanNotEligible, b.Error)
	case ans.Status == http.StatusForbidden:
		return ErrInactive
	}
	return fmt.Errorf("%w: status %d", ErrUnreachable, ans.Status)
}

// maxAnswerBytes bounds what the client reads of an answer.
const maxAnswerBytes = 1 << 20

// post sends a request and reads the answer. Network failures, unreadable
// or oversized answers wrap ErrUnreachable.
func (c *Client) post(ctx context.Context, path string, body []byte) (signedAnswer, time.Duration, error) {
	method := http.MethodPost
	var rd io.Reader = bytes.NewReader(body)
	if body == nil {
		method, rd = http.MethodGet, nil
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.ServerURL+path, rd)
	if err != nil {
		return signedAnswer{}, 0, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return signedAnswer{}, 0, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes+1))
	if err != nil || len(b) > maxAnswerBytes {
		return signedAnswer{}, 0, fmt.Errorf("%w: unreadable answer", ErrUnreachable)
	}
	var retry time.Duration
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 && s < 86400 {
		retry = time.Duration(s) * time.Second
	}
	return signedAnswer{Status: res.StatusCode, Date: res.Header.Get("Date"),
		Signature: res.Header.Get("Licensing-Signature"), Body: b}, retry, nil
}

// checkToken verifies the offline token and consults the revocation list,
// refreshing it from the server when it can.
func (c *Client) checkToken(ctx context.Context, now time.Time, st cacheState) (License, error) {
	cl := c.claims
	if cl.Issuer != c.cfg.Issuer {
		return c.fallback(now), fmt.Errorf("%w: issuer %q", ErrTokenInvalid, cl.Issuer)
	}
	exp := time.Unix(cl.ExpiresAt, 0)
	if cl.ExpiresAt == 0 || !now.Before(exp) {
		return c.fallback(now), ErrTokenExpired
	}
	var refreshErr error
	if c.cfg.ServerURL != "" {
		nonce := c.nonce()
		ans, _, err := c.post(ctx, "/api/v1/licensing/revocations?org="+url.QueryEscape(cl.Subject)+"&nonce="+url.QueryEscape(nonce), nil)
		if err == nil {
			err = c.trust(ans, nonce, now)
		}
		if err == nil && ans.Status == http.StatusOK {
			st.Revocations = &ans
			if d, err := http.ParseTime(ans.Date); err == nil {
				st.see(d)
			}
			st.see(now)
			refreshErr = c.saveCache(st)
		} else if err != nil {
			refreshErr = err
		}
	}
	if st.Revocations != nil {
		revoked, err := c.revokedIDs(*st.Revocations, cl.Subject)
		if err != nil {
			return c.fallback(now), err
		}
		if revoked[cl.ID] {
			return c.fallback(now), ErrRevoked
		}
	}
	features := cl.Features
	if features == nil {
		features = map[string]any{}
	}
	lic := License{Valid: true, Plan: cl.Plan, Features: features, OrganizationID: cl.Subject,
		OrganizationName: cl.OrgName, Source: SourceToken, CheckedAt: time.Unix(cl.IssuedAt, 0), ValidUntil: exp}
	if refreshErr != nil && !errors.Is(refreshErr, ErrUnreachable) {
		return lic, refreshErr // an untrusted list is worth knowing about
	}
	return lic, nil
}

// revokedIDs verifies a cached revocation list.
func (c *Client) revokedIDs(ans signedAnswer, org string) (map[string]bool, error) {
	if err := c.keys.verifyAnswer(ans.Status, ans.Signature, ans.Date, ans.Body); err != nil {
		return nil, ErrCacheInvalid
	}
	var b struct {
		OrganizationID string   `json:"organizationId"`
		Revoked        []string `json:"revoked"`
		Nonce          string   `json:"nonce"`
	}
	if json.Unmarshal(ans.Body, &b) != nil || b.OrganizationID != org || !c.ourNonce(b.Nonce) {
		return nil, ErrCacheInvalid
	}
	ids := make(map[string]bool, len(b.Revoked))
	for _, id := range b.Revoked {
		ids[id] = true
	}
	return ids, nil
}

// cacheState is the cache file.
type cacheState struct {
	Version     int           `json:"version"`
	InstanceID  string        `json:"instanceId,omitempty"`
	LatestSeen  time.Time     `json:"latestSeen"`
	Answer      *signedAnswer `json:"answer,omitempty"`
	Revocations *signedAnswer `json:"revocations,omitempty"`
}

// latestSeen is the latest time this client has seen: its own record, and
// the signed dates it holds (which an edit cannot lower).
func (s cacheState) latestSeen() time.Time {
	t := s.LatestSeen
	for _, a := range []*signedAnswer{s.Answer, s.Revocations} {
		if a == nil {
			continue
		}
		if d, err := http.ParseTime(a.Date); err == nil && d.After(t) {
			t = d
		}
	}
	return t
}

func (s *cacheState) see(t time.Time) {
	if t.After(s.LatestSeen) {
		s.LatestSeen = t.UTC()
	}
}

func (c *Client) instanceID(st *cacheState) string {
	if c.cfg.InstanceID != "" {
		return c.cfg.InstanceID
	}
	if st.InstanceID == "" && c.cfg.CachePath != "" {
		var b [16]byte
		rand.Read(b[:])
		st.InstanceID = hex.EncodeToString(b[:])
	}
	return st.InstanceID
}

// loadCache reads the cache file. A missing file is an empty state; a file
// whose signed parts do not verify is ignored and reported.
func (c *Client) loadCache() (cacheState, error) {
	if c.cfg.CachePath == "" {
		return cacheState{}, nil
	}
	b, err := os.ReadFile(c.cfg.CachePath)
	if errors.Is(err, os.ErrNotExist) {
		return cacheState{}, nil
	}
	if err != nil {
		return cacheState{}, fmt.Errorf("%w: %v", ErrCacheInvalid, err)
	}
	var st cacheState
	if len(b) > 4*maxAnswerBytes || json.Unmarshal(b, &st) != nil || st.Version != 1 {
		return cacheState{}, ErrCacheInvalid
	}
	if st.Answer != nil {
		if _, err := c.answerLicense(*st.Answer); err != nil {
			return cacheState{InstanceID: st.InstanceID, LatestSeen: st.LatestSeen}, ErrCacheInvalid
		}
	}
	if st.Revocations != nil && c.token {
		if _, err := c.revokedIDs(*st.Revocations, c.claims.Subject); err != nil {
			return cacheState{InstanceID: st.InstanceID, LatestSeen: st.LatestSeen}, ErrCacheInvalid
		}
	}
	return st, nil
}

// saveCache writes the cache file atomically with mode 0600.
func (c *Client) saveCache(st cacheState) error {
	if c.cfg.CachePath == "" {
		return nil
	}
	st.Version = 1
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.cfg.CachePath), ".license-*.tmp")
	if err != nil {
		return fmt.Errorf("client: cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.cfg.CachePath)
	}
	if err != nil {
		return fmt.Errorf("client: cache: %w", err)
	}
	return nil
}

// Run checks at once and then every Interval until ctx ends, calling
// OnChange when validity, plan or features change. After a failed check it
// retries sooner, with jittered exponential backoff from one minute up to
// Interval (or the server's Retry-After). It returns ctx.Err(); no goroutine
// outlives it.
func (c *Client) Run(ctx context.Context) error {
	var last *License
	failures := 0
	for {
		lic, err := c.Check(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if last == nil || changed(*last, lic) {
			if c.cfg.OnChange != nil {
				c.cfg.OnChange(lic)
			}
		}
		last = &lic
		wait := c.cfg.Interval
		if err != nil && !errors.Is(err, ErrInvalidKey) && !errors.Is(err, ErrRevoked) {
			failures++
			backoff := time.Minute * time.Duration(math.Pow(2, float64(min(failures-1, 20))))
			wait = min(wait, backoff)
			var rl *RateLimitedError
			if errors.As(err, &rl) && rl.RetryAfter > wait {
				wait = rl.RetryAfter
			}
		} else {
			failures = 0
		}
		wait = time.Duration(float64(wait) * (0.8 + 0.4*mrand.Float64())) // ±20% jitter
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func changed(a, b License) bool {
	return a.Valid != b.Valid || a.Plan != b.Plan || !reflect.DeepEqual(a.Features, b.Features)
}
