// Package client is the half of licensing that a self-hosted product embeds:
// it proves the product's license to the vendor's server and learns its plan,
// online or offline. It uses only the standard library.
//
//	c, err := client.New(client.Config{
//		ServerURL:  "https://licensing.example.com",
//		LicenseKey: os.Getenv("LICENSE_KEY"), // a 64-hex key or an offline token
//		PublicKeys: publicKeys,               // `licensing-server public-keys` (PEM) or the JWKS, embedded at build time
//		Issuer:     "licensing.example.com",
//		CachePath:  "/var/lib/product/license.json",
//		OnChange:   apply,                    // the plan to apply, when it changes
//	})
//	if err != nil {
//		return err
//	}
//	go c.Run(ctx) // checks now and every 24h
//
// # Why a license is what it is
//
// [Client.Check] returns an error exactly when the License it returns is
// not usable (not Valid: the fallback plan applies). A usable License that
// is not fresh (the last good answer served because the server could not
// confirm it) comes with a nil error and its cause in License.Warning, so
// a plain `if err != nil` never drops a good license.
//
// Every License carries a [Reason] ([ReasonValid], [ReasonRevokedOrUnknown],
// [ReasonPlanNotEligible], [ReasonSeatLimit], [ReasonServerUnreachable], [ReasonUntrustedAnswer],
// [ReasonClockRolledBack], ...) and, when the server refused in a signed
// answer, its text in ServerMessage. A key that expires within
// [KeyExpiryWarning] (the vendor set an expiry, or rotated the key) gives
// [ReasonKeyExpiring] and [License.KeyExpiresAt], and a Warn line. Each failed check is logged at Warn
// level on Config.Logger (slog.Default() unless set) with its reason, never
// with the key, and Config.OnCheck, when set, is called after every check
// with the License and the error: [Client.Run] only ever returns ctx.Err().
//
// The client sends only what the server accepts, since the server refuses a
// whole check over one bad field: New refuses an InstanceName, InstanceURL
// or InstanceID that the server would refuse, and metrics it would refuse
// are left out of each online check and named in License.DroppedMetrics
// (and a Warn line) while the license is checked with the rest.
//
// # Trust
//
// Online answers are trusted only when signed by one of PublicKeys over the
// exact body, the status and the server's date, and when they echo the
// nonce of the request (derived from the license key, so an answer for one
// key cannot serve another). The signed date is read from the
// Licensing-Date header, which reverse proxies pass untouched, not from
// Date, which they replace (the Date header only from a server that sends
// no Licensing-Date). The nonce proves an answer fresh, so it is accepted
// whatever the local clock says; the difference between the server's signed
// date and the local clock is reported as License.ClockSkew. The key is sent
// only to ServerURL's origin: a redirect anywhere else is refused
// ([ErrRedirect]). A status that the API never answers with (a 404 from a
// ServerURL that misses the API's mount point, a proxy's 502 page), or
// one that it answers this client with only signed, unsigned (a
// firewall's 403), is [ErrUnexpectedStatus], a [*StatusError] that names
// the URL called and what ServerURL must be: like an outage, not a
// forgery, it keeps the cached license.
//
// The cache file holds those signed bytes and is verified on every read, so
// editing it is useless. When the server cannot be reached the last good
// answer counts for GracePeriod after the server signed it, but never past
// the key's expiry that answer carries (then the License says
// [ReasonKeyExpired]); then FallbackPlan applies. Offline, the client compares the server's signed
// dates with its local clock corrected by the last skew measured when the
// clock was behind (a clock ahead of the server is not corrected, which can
// only shorten the grace period): a corrected clock earlier than the latest
// time seen, less ClockTolerance, is [ErrClockRollback], not a longer
// license. Offline tokens (JWTs) are verified with PublicKeys, the issuer
// and expiry checked, and dropped once a signed revocation list names them.
//
// # Limits of the cache file
//
// The cache file is the client's only memory: deleting it erases the
// revocation lists it held (a revoked offline token is accepted again) and
// the latest time seen (a clock set back is no longer noticed). So an
// offline token with a ServerURL is accepted only while its newest signed
// revocation list (or, before the first, its iat) is at most
// Config.RevocationListMaxAge old, 30 days by default
// ([ErrRevocationListStale] after that, until the server is reached): a
// deleted cache brings a revoked token back for that long at most. A clock
// set back after the deletion is not noticed, and stretches that window up
// to the token's exp; where that matters, issue short-lived tokens. A
// token without a ServerURL (air-gapped) is bounded by its exp only. A
// license key gains nothing from a deletion: without the cache, an
// unreachable server gives the fallback plan.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

// defaultTimeout bounds one request to the license server.
const defaultTimeout = 30 * time.Second

// DefaultRevocationListMaxAge is Config.RevocationListMaxAge when it is 0.
const DefaultRevocationListMaxAge = 30 * 24 * time.Hour

// NoRevocationListMaxAge, as Config.RevocationListMaxAge, accepts an
// offline token with a ServerURL for as long as its exp allows, however old
// its revocation list: a deleted cache file then brings a revoked token
// back until its exp.
const NoRevocationListMaxAge time.Duration = -1

// Config configures a Client; New fills in the defaults.
type Config struct {
	ServerURL  string // the license server (no query or fragment); the API path is added
	LicenseKey string // a 64-hex license key, or an offline token (JWT)
	// PublicKeys are the server's public keys, embedded in the product: the
	// PEM that `licensing-server public-keys` prints (or GET
	// /api/v1/licensing/public-keys.pem serves), or the JWKS of GET
	// /api/v1/licensing/public-keys. New refuses anything else, a
	// document without a usable Ed25519 or RSA key, and one without the
	// Ed25519 key (which signs the server's answers and revocation lists)
	// unless the license is an offline token without a ServerURL.
	PublicKeys []byte
	Issuer     string // the iss that offline tokens must carry; required for tokens
	CachePath  string // regular file for the last signed answer (mode 0600); "" keeps nothing

	// InstanceName names this installation to the vendor: at most 255
	// characters without control or format characters.
	InstanceName string
	// InstanceURL is where this installation is served, as the vendor
	// sees it: an absolute http or https URL with any host name
	// ("http://storno-app:8000"), or a bare dotted host name, localhost or
	// IP address with an optional port and path ("app.example.com:8443/x").
	// New refuses anything else (as the server would at every check).
	InstanceURL string
	// InstanceID identifies this installation to the server (sharing
	// detection): at most 128 printable ASCII characters without spaces,
	// other than "." and "..".
	// Default: a random id made once and kept in the cache file.
	InstanceID string
	// Metrics, when set, is called before each online check; its counters
	// are reported to the server. Those the server would refuse, and so
	// refuse the whole check for, are left out and named in
	// License.DroppedMetrics: a name that is empty, longer than 64
	// characters, holds a control or format character or a license key; a
	// value that is negative, NaN or infinite; and all but the first 32 by
	// sorted name.
	Metrics func() map[string]float64

	Interval       time.Duration // Run's period; default 24h
	GracePeriod    time.Duration // how long the last good answer outlives an unreachable server; default 7 days
	FallbackPlan   string        // the plan when no license holds; default "community"
	ClockTolerance time.Duration // clock drift accepted before ErrClockRollback; default 1h
	// RevocationListMaxAge bounds, for an offline token with a ServerURL,
	// how long the token is accepted without a fresh revocation list: the
	// newest list the server signed for it (or, before the first, the
	// token's own iat) may be at most this old on the corrected clock (a
	// list fetched by the check itself is fresh, whatever the clock), else
	// Check refuses the token with ErrRevocationListStale until the server
	// is reached. Deleting the cache file erases the lists the client held,
	// and with them a revocation it learnt: this bound is how long such a
	// deletion can bring a revoked token back. Default 30 days (0);
	// NoRevocationListMaxAge turns the bound off. A token without a
	// ServerURL (air-gapped) is bounded by its exp only. New refuses any
	// other negative value.
	RevocationListMaxAge time.Duration
	// HTTPClient sends the requests; default: a client with a 30 s timeout.
	// The Client uses a copy whose CheckRedirect refuses any redirect to
	// another origin than ServerURL's (then applies this one's policy), and
	// whose Timeout is 30 s when this one has none: a check always ends.
	HTTPClient *http.Client
	// OnChange is called by Run when the license's validity, plan or
	// features change (and once with the first result).
	OnChange func(License)
	// OnCheck, when set, is called after every check (Check's and Run's)
	// with what Check returns: the License to apply and the error, nil
	// exactly when License.Valid. It runs on the checking goroutine and is
	// not called for a check cut short by the end of its context.
	OnCheck func(License, error)
	// Logger receives a Warn line for each failed check (reason, plan,
	// source, server message, error) and for each license served with a
	// License.Warning, and a Debug line for each fresh one,
	// and a Warn line listing License.DroppedMetrics when there are any.
	// Default slog.Default(); slog.New(slog.DiscardHandler) silences it.
	// No line holds the license key or token.
	Logger *slog.Logger
	Now    func() time.Time // for tests; default time.Now
}

// Client checks one license. It is safe for concurrent use; it holds no
// global state and starts no goroutine outside Run.
type Client struct {
	cfg    Config
	http   *http.Client // cfg.HTTPClient, guarded against redirects to another origin
	server string       // cfg.ServerURL as messages show it: a password in it as xxxxx
	keys   keySet
	token  bool // LicenseKey is an offline token
	claims wire.TokenClaims
}

// New checks cfg and returns a Client. Bad public keys, a malformed license
// key, an unverifiable token, and for a license key an InstanceName,
// InstanceURL or InstanceID that the server refuses are errors here, not at
// the first check.
func New(cfg Config) (*Client, error) {
	ks, err := parsePublicKeys(cfg.PublicKeys)
	if err != nil {
		return nil, err
	}
	cfg.LicenseKey = strings.TrimSpace(cfg.LicenseKey)
	c := &Client{keys: ks}
	switch {
	case cfg.LicenseKey == "":
		return nil, ErrNoLicenseKey
	case strings.Count(cfg.LicenseKey, ".") == 2:
		c.token = true
		if c.claims, err = parseToken(ks, cfg.LicenseKey); err != nil {
			return nil, err
		}
		if cfg.Issuer == "" {
			return nil, errors.New("client: Config.Issuer is required to check offline tokens")
		}
	case wire.KeyChecksumOK(strings.ToLower(cfg.LicenseKey)):
		cfg.LicenseKey = strings.ToLower(cfg.LicenseKey)
		if cfg.ServerURL == "" {
			return nil, errors.New("client: Config.ServerURL is required for a license key")
		}
		if err := checkInstance(cfg); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("client: Config.LicenseKey (%d characters) is neither a license key (64 hex characters with a valid checksum) nor an offline token (a JWT): copy it again, whole, from the vendor", len(cfg.LicenseKey))
	}
	if !ks.hasEd25519() && (!c.token || cfg.ServerURL != "") {
		signed := "the license server's answers"
		if c.token {
			signed = "the license server's revocation lists"
		}
		return nil, fmt.Errorf("client: Config.PublicKeys holds no Ed25519 key, which signs %s (an RSA key signs RS256 tokens only): embed every block that `licensing-server public-keys` prints (the Ed25519 key follows the RSA key), or the whole JWKS", signed)
	}
	if cfg.RevocationListMaxAge < 0 && cfg.RevocationListMaxAge != NoRevocationListMaxAge {
		return nil, fmt.Errorf("client: Config.RevocationListMaxAge (%s) is negative: set 0 for the default (%s), a positive duration, or client.NoRevocationListMaxAge to accept an offline token until its exp however old its revocation list",
			cfg.RevocationListMaxAge, DefaultRevocationListMaxAge)
	}
	if cfg.CachePath != "" {
		if fi, err := os.Stat(cfg.CachePath); err == nil && !fi.Mode().IsRegular() {
			// each save renames a new file over the path: never over a device
			kind, must := "a device", `name a regular file, such as /var/lib/product/license.json ("" keeps nothing)`
			switch {
			case fi.IsDir():
				kind, must = "a directory", "name a file in it, such as "+filepath.Join(cfg.CachePath, "license.json")
			case fi.Mode()&os.ModeNamedPipe != 0, fi.Mode()&os.ModeSocket != 0:
				kind = "a pipe or socket"
			}
			return nil, fmt.Errorf("client: Config.CachePath (%s) is %s, not a regular file: %s", cfg.CachePath, kind, must)
		}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: defaultTimeout}
	}
	if cfg.ServerURL != "" {
		u, err := url.Parse(cfg.ServerURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("client: Config.ServerURL must be an absolute http or https URL")
		}
		if strings.ContainsAny(cfg.ServerURL, "?#") { // the API path added after it would be part of the query or fragment
			return nil, fmt.Errorf("client: Config.ServerURL must not hold a query or a fragment: the client adds the API path to it; use %s",
				u.Scheme+"://"+u.Host+u.EscapedPath())
		}
		cfg.ServerURL = strings.TrimRight(cfg.ServerURL, "/")
		c.server = cfg.ServerURL
		if u.User != nil { // errors go to logs: never the password
			if _, ok := u.User.Password(); ok {
				c.server = strings.TrimRight(u.Redacted(), "/")
			}
		}
		c.http = guard(cfg.HTTPClient, u)
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
	if cfg.RevocationListMaxAge == 0 {
		cfg.RevocationListMaxAge = DefaultRevocationListMaxAge
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c.cfg = cfg
	return c, nil
}

// checkInstance refuses, at New, the instance fields that the server would
// refuse at every check (wire's rules, the server's own), so that a
// misconfigured product fails at start rather than losing its license.
func checkInstance(cfg Config) error {
	if err := wire.CheckInstanceName(cfg.InstanceName); err != nil {
		return instanceError("InstanceName", err, fmt.Sprintf("valid text of at most %d characters without control or format characters", wire.MaxInstanceNameLength))
	}
	if err := wire.CheckInstanceURL(cfg.InstanceURL); err != nil {
		return instanceError("InstanceURL", err, fmt.Sprintf("an absolute http or https URL, or a dotted host name (or localhost, or an IP address) with an optional port and path, of at most %d bytes", wire.MaxInstanceURLLength))
	}
	if err := wire.CheckInstanceID(cfg.InstanceID); err != nil {
		return instanceError("InstanceID", err, fmt.Sprintf("at most %d printable ASCII characters without spaces, other than . and ..", wire.MaxInstanceIDLength))
	}
	return nil
}

// instanceError says what field must be; it never repeats the value, which
// may hold a key.
func instanceError(field string, err error, must string) error {
	if errors.Is(err, wire.ErrHoldsKey) {
		return fmt.Errorf("client: Config.%s must not hold a license key (64 hex characters)", field)
	}
	return fmt.Errorf("client: Config.%s must be %s", field, must)
}

func (c *Client) fallback(now time.Time) License {
	return License{Plan: c.cfg.FallbackPlan, Features: map[string]any{}, Source: SourceFallback, CheckedAt: now}
}

// Check establishes the license now: online when it can, else from the
// cache or the offline token. It always returns the License to apply, its
// Reason set.
//
// err is nil exactly when the License is usable (License.Valid): a fresh
// answer, a verified token, or the last good answer within the grace
// period. A usable License that is not fresh (the server unreachable, an
// unexpected status, a damaged cache file beside a valid token), or a
// fresh one whose cache file cannot be written, carries the cause in
// License.Warning and Reason, with err == nil, so that the usual
//
//	lic, err := c.Check(ctx)
//	if err != nil {
//		// no license: lic is Config.FallbackPlan's, err says why
//	}
//
// never drops a good license. Config.OnCheck and Config.Logger hear of the
// result.
func (c *Client) Check(ctx context.Context) (License, error) {
	now := c.cfg.Now()
	st, cacheErr := c.loadCache()
	var lic License
	var err error
	var dropped []string
	if c.token {
		lic, err = c.checkToken(ctx, now, &st, cacheErr)
	} else {
		var metrics map[string]float64
		if c.cfg.Metrics != nil {
			metrics, dropped = sendableMetrics(c.cfg.Metrics())
		}
		lic, err = c.checkKey(ctx, now, &st, cacheErr, metrics)
	}
	if c.cfg.CachePath != "" && cacheErr == nil && !errors.Is(err, ErrClockRollback) {
		// The latest time seen, offline too: a clock wound back later,
		// even to after the server's last word, is then noticed. To the
		// minute, so that frequent checks do not write the file each time.
		if t := st.clock(now).UTC(); t.Sub(st.LatestSeen) >= time.Minute {
			st.LatestSeen = t
			err = errors.Join(err, c.saveCache(st))
		}
	}
	lic.DroppedMetrics = dropped
	lic.Reason = keyExpiryReason(lic, reasonOf(err), st.clock(now))
	lic.ServerMessage = serverMessage(err)
	lic.ClockSkew = st.ClockSkew
	if err != nil && lic.Valid {
		lic.Warning, err = err, nil // usable: the cause goes with the license
	}
	if ctx.Err() == nil {
		c.report(lic, err)
	}
	return lic, err
}

// checkKey checks a license key: online, else the cached answer within
// grace on a clock that has not gone back.
func (c *Client) checkKey(ctx context.Context, now time.Time, st *cacheState, cacheErr error, metrics map[string]float64) (License, error) {
	lic, err := c.checkOnline(ctx, now, st, metrics)
	if err == nil || lic.Valid || errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrInactive) || errors.Is(err, ErrPlanNotEligible) || errors.Is(err, ErrSeatLimit) {
		return lic, err // the server's word (with a cache that could not be written, say)
	}
	// Unreachable, untrusted, rejected or rate limited: the last good answer, within grace.
	if rb := st.rolledBack(now, c.cfg.ClockTolerance); rb != nil {
		return c.fallback(now), errors.Join(rb, err)
	}
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
			if st.clock(now).Before(cached.ValidUntil) {
				return cached, err
			}
			if !cached.KeyExpiresAt.IsZero() && !st.clock(now).Before(cached.KeyExpiresAt) {
				fb := c.fallback(now)
				fb.KeyExpiresAt = cached.KeyExpiresAt // the server would now refuse the key: say so
				return fb, errors.Join(ErrKeyExpired, err)
			}
		}
	}
	return c.fallback(now), err
}

// report tells Config.OnCheck and Config.Logger about a check.
func (c *Client) report(lic License, err error) {
	attrs := []any{"reason", lic.Reason, "plan", lic.Plan, "valid", lic.Valid, "source", lic.Source}
	if lic.ServerMessage != "" {
		attrs = append(attrs, "serverMessage", lic.ServerMessage)
	}
	if lic.ClockSkew != 0 {
		attrs = append(attrs, "clockSkew", lic.ClockSkew)
	}
	switch {
	case err != nil:
		c.cfg.Logger.Warn("licensing client: license check failed", append(attrs, "err", err)...)
	case lic.Warning != nil:
		c.cfg.Logger.Warn("licensing client: license holds, with a warning", append(attrs, "validUntil", lic.ValidUntil, "warning", lic.Warning)...)
	case lic.Reason == ReasonKeyExpiring:
		c.cfg.Logger.Warn(keyExpiringMessage, append(attrs, "keyExpiresAt", lic.KeyExpiresAt)...)
	default:
		c.cfg.Logger.Debug("licensing client: license checked", attrs...)
	}
	if len(lic.DroppedMetrics) > 0 {
		c.cfg.Logger.Warn("licensing client: metrics not reported, the server refuses them", "dropped", lic.DroppedMetrics)
	}
	if c.cfg.OnCheck != nil {
		c.cfg.OnCheck(lic, err)
	}
}

// Run checks at once and then every Interval until ctx ends, calling
// OnChange when validity, plan or features change (and OnCheck after every
// check). After a failed check it retries sooner, with jittered exponential
// backoff from one minute up to Interval (or the server's Retry-After). It
// returns ctx.Err(); no goroutine outlives it.
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
		if err == nil {
			err = lic.Warning // a license not confirmed is retried as soon as a failed one
		}
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
