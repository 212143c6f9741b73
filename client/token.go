package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

// checkToken verifies the offline token and consults the revocation list,
// refreshing it from the server when it can. A damaged or edited cache
// (cacheErr) that no fresh list replaced is reported, the token's license
// kept: the revocations it held are lost, which is worth knowing.
func (c *Client) checkToken(ctx context.Context, now time.Time, st *cacheState, cacheErr error) (License, error) {
	cl := c.claims
	if cl.Issuer != c.cfg.Issuer {
		return c.fallback(now), fmt.Errorf("%w: its issuer is %q, Config.Issuer is %q: set Config.Issuer to the issuer of the vendor's license server (licensing-server's -issuer, Policy.Issuer for the library), which every token it issues carries",
			ErrTokenInvalid, cl.Issuer, c.cfg.Issuer)
	}
	var refreshErr error
	replaced := false // a fresh signed list took the cached one's place
	if c.cfg.ServerURL != "" {
		replaced, refreshErr = c.refreshRevocations(ctx, st)
	}
	if err := st.rolledBack(now, c.cfg.ClockTolerance); err != nil {
		return c.fallback(now), err
	}
	exp := time.Unix(cl.ExpiresAt, 0)
	if cl.ExpiresAt == 0 || !st.clock(now).Before(exp) {
		return c.fallback(now), ErrTokenExpired
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
	// A list fetched by this check is fresh, whatever the local clock says
	// (it may be ahead of the server's by more than the bound).
	if err := c.staleRevocations(now, st); err != nil && !replaced {
		return c.fallback(now), errors.Join(err, refreshErr)
	}
	features := cl.Features
	if features == nil {
		features = map[string]any{}
	}
	lic := License{Valid: true, Plan: cl.Plan, Features: features, OrganizationID: cl.Subject,
		OrganizationName: cl.OrganizationName, Source: SourceToken, CheckedAt: time.Unix(cl.IssuedAt, 0), ValidUntil: exp}
	var warnings []error
	if refreshErr != nil && (!errors.Is(refreshErr, ErrUnreachable) || errors.Is(refreshErr, ErrUnexpectedStatus)) {
		// an untrusted list, a signed refusal (429), or a ServerURL that
		// misses the API, is worth knowing about
		warnings = append(warnings, refreshErr)
	}
	if cacheErr != nil && !replaced {
		warnings = append(warnings, cacheErr)
	}
	return lic, errors.Join(warnings...)
}

// staleRevocations returns ErrRevocationListStale when the token has a
// ServerURL and its newest signed revocation list (or, before the first,
// its iat) is older than Config.RevocationListMaxAge on the corrected
// clock (checkToken ignores it for a list fetched by the same check). The
// cache file is the only record of the lists: once it is deleted, the
// token's iat is all there is to go on.
func (c *Client) staleRevocations(now time.Time, st *cacheState) error {
	maxAge := c.cfg.RevocationListMaxAge
	if c.cfg.ServerURL == "" || maxAge < 0 {
		return nil
	}
	fresh, what := time.Unix(c.claims.IssuedAt, 0), "the token was issued"
	if st.Revocations != nil {
		if d, err := http.ParseTime(st.Revocations.Date); err == nil && d.After(fresh) {
			fresh, what = d, "its newest revocation list was signed"
		}
	}
	age := st.clock(now).Sub(fresh)
	if age <= maxAge {
		return nil
	}
	return fmt.Errorf("%w: %s at %s, %s ago, more than Config.RevocationListMaxAge (%s): reach the license server at %s to refresh it",
		ErrRevocationListStale, what, fresh.UTC().Format(time.RFC3339), age.Round(time.Minute), maxAge, c.server)
}

// refreshRevocations fetches the signed revocation list of the token's
// organization and keeps it in st (and the cache) when it is trusted;
// replaced says it did. A signed refusal (429, 400) is an error that
// carries it.
func (c *Client) refreshRevocations(ctx context.Context, st *cacheState) (replaced bool, err error) {
	nonce := c.nonce()
	q := url.Values{"org": {c.claims.Subject}, "nonce": {nonce}}
	ans, retry, err := c.do(ctx, wire.APIPrefix+wire.PathRevocations+"?"+q.Encode(), nil)
	if err != nil {
		return false, err
	}
	received := c.cfg.Now()
	if err := c.expectStatus(ans, http.MethodGet, wire.APIPrefix+wire.PathRevocations, revocationsStatuses); err != nil {
		return false, err
	}
	date, err := c.trust(ans, nonce)
	if err != nil {
		return false, err
	}
	st.trusted(date, received)
	switch ans.Status {
	case http.StatusOK:
	case http.StatusTooManyRequests: // a signed refusal leaves the list as it was, and says so
		return false, &refusal{&RateLimitedError{RetryAfter: retry}, errorText(ans.Body)}
	default:
		return false, &refusal{fmt.Errorf("%w: status %d", ErrRejected, ans.Status), errorText(ans.Body)}
	}
	if _, err := c.revokedIDs(ans, c.claims.Subject); err != nil {
		return false, fmt.Errorf("%w: revocation list", ErrUntrusted)
	}
	st.Revocations = &ans
	return true, c.saveCache(*st)
}

// revokedIDs verifies a revocation list (fresh or cached) for org.
func (c *Client) revokedIDs(ans signedAnswer, org string) (map[string]bool, error) {
	if err := c.keys.verifyAnswer(ans.Status, ans.Signature, ans.Date, ans.Body); err != nil {
		return nil, ErrCacheInvalid
	}
	var b wire.RevocationList
	if json.Unmarshal(ans.Body, &b) != nil || b.OrganizationID != org || !c.ourNonce(b.Nonce) {
		return nil, ErrCacheInvalid
	}
	ids := make(map[string]bool, len(b.Revoked))
	for _, id := range b.Revoked {
		ids[id] = true
	}
	return ids, nil
}
