package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

// Source says where a License came from.
type Source string

// Sources of a License.
const (
	SourceOnline   Source = "online"   // a fresh signed answer
	SourceCache    Source = "cache"    // the last signed answer, within the grace period
	SourceToken    Source = "token"    // a verified offline token
	SourceFallback Source = "fallback" // nothing holds: Config.FallbackPlan
)

// Reason says why a License is what it is. It is ReasonValid for a fresh
// answer or a verified token with nothing to report; otherwise it names the
// failure (Check's error, or License.Warning for a usable license that is
// not fresh, says more, for a person).
type Reason string

// Reasons of a License. The comment names the error behind it: Check's
// error, or License.Warning when the License is still usable (Valid).
const (
	// ReasonValid: a fresh signed answer or a verified offline token says
	// the license holds (nil error).
	ReasonValid Reason = "valid"
	// ReasonRevokedOrUnknown: the server answered 401 "Invalid or revoked
	// license key" (ErrInvalidKey); it does not tell a revoked key from one
	// it never issued. Remembered offline.
	ReasonRevokedOrUnknown Reason = "revoked_or_unknown"
	// ReasonOrganizationInactive: the key's organization is deactivated
	// (403, ErrInactive).
	ReasonOrganizationInactive Reason = "organization_inactive"
	// ReasonPlanNotEligible: the organization's plan does not include
	// self-hosting, or its period ended (403 with a plan, ErrPlanNotEligible).
	ReasonPlanNotEligible Reason = "plan_not_eligible"
	// ReasonRequestRejected: the server refused the request itself (400,
	// ErrRejected). The client sends only what the server's rules accept
	// (New checks InstanceName, InstanceURL and InstanceID, and metrics the
	// server refuses are left out), so this means a server with stricter
	// rules than this client's.
	ReasonRequestRejected Reason = "request_rejected"
	// ReasonRateLimited: the server asked to wait (429, *RateLimitedError).
	ReasonRateLimited Reason = "rate_limited"
	// ReasonServerUnreachable: no answer, an unreadable one or a server
	// error (ErrUnreachable); the cache counts within the grace period.
	ReasonServerUnreachable Reason = "server_unreachable"
	// ReasonUnexpectedStatus: the server answered with a status that the
	// license server's API does not answer with, unsigned: a 404 from a
	// Config.ServerURL that misses the API's mount point, a firewall's
	// unsigned 403 (the API signs every answer to the client), or a
	// proxy's 502 (ErrUnexpectedStatus, a *StatusError that names the URL
	// called); the
	// cache counts within the grace period, as for an outage.
	ReasonUnexpectedStatus Reason = "unexpected_status"
	// ReasonRedirectRefused: the server redirected to another origin, where
	// the client does not send the key (ErrRedirect, which also wraps
	// ErrUnreachable).
	ReasonRedirectRefused Reason = "redirect_refused"
	// ReasonUntrustedAnswer: an answer whose signature or nonce does not
	// verify (ErrUntrusted): a forgery, a replay or a proxy that rewrote it.
	ReasonUntrustedAnswer Reason = "untrusted_answer"
	// ReasonClockRolledBack: the server could not vouch for the license now,
	// and the local clock is earlier than a time already seen
	// (ErrClockRollback), so neither the cache nor a token is trusted.
	ReasonClockRolledBack Reason = "clock_rolled_back"
	// ReasonTokenExpired: the offline token's exp has passed (ErrTokenExpired).
	ReasonTokenExpired Reason = "token_expired"
	// ReasonTokenRevoked: a signed revocation list names the offline token
	// (ErrRevoked).
	ReasonTokenRevoked Reason = "token_revoked"
	// ReasonTokenInvalid: the offline token's issuer is not Config.Issuer
	// (ErrTokenInvalid).
	ReasonTokenInvalid Reason = "token_invalid"
	// ReasonRevocationListStale: the offline token has had no revocation
	// list signed by the server for longer than Config.RevocationListMaxAge
	// (ErrRevocationListStale, joined with why the server was not reached),
	// so it is not accepted until the server is reached.
	ReasonRevocationListStale Reason = "revocation_list_stale"
	// ReasonCacheFailed: the cache file is damaged or was edited
	// (ErrCacheInvalid), or cannot be written (ErrCacheWrite).
	ReasonCacheFailed Reason = "cache_failed"
	// ReasonOther: an error none of the above describes.
	ReasonOther Reason = "other"
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
	// KeyExpiresAt is when the license key expires, as the server's last
	// answer said (zero: it never expires, or no answer told); see
	// ReasonKeyExpiring and ReasonKeyExpired.
	KeyExpiresAt time.Time
	Source       Source
	// Reason says why the License is what it is; see Reason.
	Reason Reason
	// Warning is why a usable License (Valid, Check's error nil) is not
	// fresh: the last good answer served from the cache because the server
	// could not confirm it (errors.Is(Warning, ErrUnreachable), say), or a
	// valid token beside a damaged cache file, or without a fresh
	// revocation list (untrusted, or refused with a signed 429: a
	// *RateLimitedError); or why a fresh answer was not kept (its cache
	// file cannot be written: ErrCacheWrite). nil otherwise for a fresh
	// answer or token, and for a License that is not Valid (Check's error
	// says why then). Reason names it too.
	Warning error
	// ServerMessage is the error text of the server's signed refusal behind
	// Reason (for example "Invalid or revoked license key", or the plan's
	// upgrade advice), as the server wrote it; "" when there is none.
	// Unsigned text is never put here.
	ServerMessage string
	// DroppedMetrics describes the metrics of Config.Metrics that this
	// check did not report because the server refuses them (see
	// Config.Metrics), sorted by name: the name quoted (never one that
	// holds a license key), a colon and why, for example
	// `"diskFree": the value -1 is negative or not finite`. nil when none
	// was dropped. Dropping them does not change Reason: the license is
	// checked with the rest.
	DroppedMetrics []string
	// ClockSkew is the server's signed date minus the local clock when the
	// last trusted answer arrived (positive: the local clock is behind), to
	// within a second; 0 until one is measured. Online answers are trusted
	// whatever it is; see the package doc for how it is used offline.
	ClockSkew time.Duration
	// CheckedAt is when the server vouched for this license: the signed date
	// of the answer, or the token's iat.
	CheckedAt time.Time
	// ValidUntil is when this license stops counting without a new check:
	// CheckedAt + GracePeriod for answers, but never after KeyExpiresAt;
	// exp for tokens.
	ValidUntil time.Time
}

// Errors of New and Check, and of License.Warning. A failing Check still
// returns the License to apply: the fallback (Config.FallbackPlan). When
// the last good answer or a token still holds, Check returns no error and
// the error is License.Warning.
var (
	// ErrNoLicenseKey: New was given an empty Config.LicenseKey.
	ErrNoLicenseKey    = errors.New("client: Config.LicenseKey is empty: set it to the license key (64 hex characters) or the offline token the vendor issued; products usually read it from their configuration or an environment variable such as LICENSE_KEY")
	ErrInvalidKey      = errors.New("client: license key is invalid or revoked")
	ErrRevoked         = errors.New("client: offline token is revoked")
	ErrInactive        = errors.New("client: organization is inactive")
	ErrPlanNotEligible = errors.New("client: plan does not include self-hosting")
	ErrRejected        = errors.New("client: the server rejected the request")
	ErrUnreachable     = errors.New("client: license server unreachable")
	ErrRedirect        = errors.New("client: the server redirected to another origin; the license key is not sent there")
	ErrUntrusted       = errors.New("client: answer not trusted (bad signature or nonce)")
	// ErrUnexpectedStatus: the server answered with a status that the
	// license server's API does not answer with (a 404 from a ServerURL
	// that misses the API's mount point, a proxy's 502 page), or with one
	// that it answers this client with only signed, unsigned (a
	// firewall's 403, a sign-in proxy's 401, a CDN's 429). The error is
	// a *StatusError, which also matches ErrUnreachable: like an outage,
	// the cached license counts within the grace period.
	ErrUnexpectedStatus = errors.New("client: unexpected HTTP status: not an answer of the license server's API")
	ErrTokenExpired     = errors.New("client: offline token expired")
	ErrTokenInvalid     = errors.New("client: offline token invalid")
	// ErrRevocationListStale: the offline token's newest revocation list is
	// older than Config.RevocationListMaxAge (see there).
	ErrRevocationListStale = errors.New("client: the offline token is not accepted without a fresh revocation list")
	ErrClockRollback       = errors.New("client: the local clock is earlier than a time already seen; refusing to extend the license")
	ErrCacheInvalid        = errors.New("client: cache file is damaged or was edited; ignored")
	ErrCacheWrite          = errors.New("client: cannot write the cache file")
)

// StatusError is an answer with a status that the license server's API
// does not give (see ErrUnexpectedStatus): its text names the status, the
// URL called and what Config.ServerURL must be. errors.Is matches it with
// ErrUnexpectedStatus and with ErrUnreachable.
type StatusError struct {
	Status    int    // the HTTP status received
	Method    string // the request's method
	URL       string // the URL called, without its query (a password in it as xxxxx)
	ServerURL string // Config.ServerURL, as used (no trailing slash; a password in it as xxxxx)
	// From is the URL first called when a redirect within ServerURL's
	// origin led to URL (Method is then the redirected request's: a 301,
	// 302 or 303 turns a POST into a GET, without the key); "" otherwise.
	From string

	fromMethod string // the method of the request to From
	unsigned   bool   // a status the API answers with, but unsigned
}

// Error names the status, the URL and the fix.
func (e *StatusError) Error() string {
	got := fmt.Sprintf("client: HTTP status %d %s from %s %s", e.Status, http.StatusText(e.Status), e.Method, e.URL)
	if e.From != "" {
		got += fmt.Sprintf(", redirected from %s %s", e.fromMethod, e.From)
		return got + fmt.Sprintf(", not an answer of the license server's API: Config.ServerURL (%s) must be the URL under which the license server serves %s/ with no redirect (the license server does not redirect its API)",
			e.ServerURL, wire.APIPrefix)
	}
	must := fmt.Sprintf("Config.ServerURL (%s) must be the URL under which the license server serves %s/ (for an API at https://vendor.example/billing/licensing%s/validate, it is https://vendor.example/billing/licensing)",
		e.ServerURL, wire.APIPrefix, wire.APIPrefix)
	if u, err := url.Parse(e.ServerURL); err == nil && strings.HasSuffix(strings.TrimRight(u.Path, "/"), wire.APIPrefix) {
		must = fmt.Sprintf("Config.ServerURL (%s) ends with %s, which the client adds itself: drop it from Config.ServerURL", e.ServerURL, wire.APIPrefix)
	}
	if e.unsigned {
		return got + ", unsigned: the license server signs every answer to this client, so a proxy, firewall or other application answered; check that nothing before the license server refuses the client, and that " + must
	}
	if e.Status >= 500 {
		return got + ", unsigned: a proxy or gateway answered, not the license server (down, or unreachable from the proxy); if the server runs, " + must
	}
	return got + ", not an answer of the license server's API: " + must
}

// Unwrap makes errors.Is match ErrUnexpectedStatus and ErrUnreachable.
func (e *StatusError) Unwrap() []error { return []error{ErrUnexpectedStatus, ErrUnreachable} }

// RateLimitedError says the server asked to wait.
type RateLimitedError struct{ RetryAfter time.Duration }

// Error says how long the server asked to wait.
func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("client: rate limited; retry after %s", e.RetryAfter)
}

// refusal is an error that a signed, trusted answer stated: err is the
// sentinel, message the server's text.
type refusal struct {
	err     error
	message string
}

func (r *refusal) Error() string {
	if r.message == "" {
		return r.err.Error()
	}
	return fmt.Sprintf("%s (server: %q)", r.err, r.message)
}

func (r *refusal) Unwrap() error { return r.err }

// reasonOf names the failure in err. A joined error (an unreachable server
// and a remembered refusal, say) reports the most telling one: the order of
// the switch.
func reasonOf(err error) Reason {
	var rl *RateLimitedError
	switch {
	case err == nil:
		return ReasonValid
	case errors.Is(err, ErrClockRollback):
		return ReasonClockRolledBack
	case errors.Is(err, ErrKeyExpired):
		return ReasonKeyExpired
	case errors.Is(err, ErrInvalidKey):
		return ReasonRevokedOrUnknown
	case errors.Is(err, ErrRevoked):
		return ReasonTokenRevoked
	case errors.Is(err, ErrInactive):
		return ReasonOrganizationInactive
	case errors.Is(err, ErrPlanNotEligible):
		return ReasonPlanNotEligible
	case errors.Is(err, ErrSeatLimit):
		return ReasonSeatLimit
	case errors.Is(err, ErrTokenExpired):
		return ReasonTokenExpired
	case errors.Is(err, ErrTokenInvalid):
		return ReasonTokenInvalid
	case errors.Is(err, ErrRevocationListStale):
		return ReasonRevocationListStale
	case errors.As(err, &rl):
		return ReasonRateLimited
	case errors.Is(err, ErrRedirect):
		return ReasonRedirectRefused
	case errors.Is(err, ErrUntrusted):
		return ReasonUntrustedAnswer
	case errors.Is(err, ErrUnexpectedStatus):
		return ReasonUnexpectedStatus
	case errors.Is(err, ErrRejected):
		return ReasonRequestRejected
	case errors.Is(err, ErrUnreachable):
		return ReasonServerUnreachable
	case errors.Is(err, ErrCacheInvalid), errors.Is(err, ErrCacheWrite):
		return ReasonCacheFailed
	}
	return ReasonOther
}

// serverMessage returns the server's text of the refusal in err, if any.
func serverMessage(err error) string {
	var r *refusal
	if errors.As(err, &r) {
		return r.message
	}
	return ""
}
