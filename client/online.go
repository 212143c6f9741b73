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
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

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

// checkOnline asks the server, reporting metrics (already cut to what the
// server accepts). It returns the License of a trusted answer (and records
// the answer, the clock skew and the time in st), or an error that says why
// there is none. A cache file that cannot be written joins ErrCacheWrite to
// the answer's outcome: a valid answer is returned with it, still valid.
func (c *Client) checkOnline(ctx context.Context, now time.Time, st *cacheState, metrics map[string]float64) (License, error) {
	nonce := c.nonce()
	req := wire.ValidateRequest{LicenseKey: c.cfg.LicenseKey, InstanceName: c.cfg.InstanceName,
		InstanceURL: c.cfg.InstanceURL, InstanceID: c.instanceID(st), Metrics: metrics, Nonce: nonce}
	body, err := json.Marshal(req)
	if err != nil { // cannot happen: every field is a string or a finite number
		return License{}, fmt.Errorf("client: encode request: %w", err)
	}
	ans, retry, err := c.do(ctx, wire.APIPrefix+wire.PathValidate, body)
	if err != nil {
		return License{}, err
	}
	received := c.cfg.Now()
	if err := c.expectStatus(ans, http.MethodPost, wire.APIPrefix+wire.PathValidate, validateStatuses); err != nil {
		return License{}, err
	}
	date, err := c.trust(ans, nonce)
	if err != nil {
		return License{}, err
	}
	st.trusted(date, received)
	switch ans.Status {
	case http.StatusOK, http.StatusUnauthorized, http.StatusForbidden:
	case http.StatusTooManyRequests:
		return License{}, &refusal{&RateLimitedError{RetryAfter: retry}, errorText(ans.Body)}
	default:
		return License{}, &refusal{fmt.Errorf("%w: status %d", ErrRejected, ans.Status), errorText(ans.Body)}
	}
	lic, err := c.answerLicense(ans)
	if err != nil {
		return License{}, err
	}
	st.Answer = &ans
	saveErr := c.saveCache(*st) // a cache that cannot be written does not undo the server's word
	if !lic.Valid {
		fb := c.fallback(now)
		fb.KeyExpiresAt = lic.KeyExpiresAt // an expired key's refusal says when
		if saveErr != nil {
			return fb, errors.Join(c.answerError(ans), saveErr)
		}
		return fb, c.answerError(ans)
	}
	lic.Source = SourceOnline
	return lic, saveErr // ErrCacheWrite with a usable license: Check makes it the Warning
}

// errorText is the error field of a verified answer's body, or "".
func errorText(body []byte) string {
	var b wire.ErrorAnswer
	json.Unmarshal(body, &b)
	return b.Error
}

// The statuses that the license server answers with a signed answer: for
// the validate route, and for the revocations route. A 5xx is the server's
// own failure (signed or not, an outage); any other status is not an
// answer of the license server's API at all (see expectStatus).
var (
	validateStatuses    = []int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests}
	revocationsStatuses = []int{http.StatusOK, http.StatusBadRequest, http.StatusTooManyRequests}
)

// expectStatus returns nil when ans has a status in expected, which trust
// then checks. A signed 5xx is the license server's own failure
// (ErrUnreachable); an unsigned one came from a proxy or gateway, and any
// other status (a 404 from a ServerURL that misses the API's mount point)
// is not an answer of the license server's API: both are a
// *StatusError naming the status, the URL called and what ServerURL must be.
//
// The license server signs every answer to this client (its requests carry
// a nonce), so an unsigned answer with a status of the API other than 200
// (a firewall's 403, a sign-in proxy's 401, a CDN's 429) did not come from
// it either: a *StatusError too. An unsigned 200 goes on to trust, which
// refuses it as untrusted (it claims a license).
func (c *Client) expectStatus(ans signedAnswer, method, path string, expected []int) error {
	apiStatus := slices.Contains(expected, ans.Status)
	if apiStatus && (ans.Signature != "" || ans.Status == http.StatusOK) {
		return nil
	}
	if ans.Status >= 500 && ans.Signature != "" {
		return fmt.Errorf("%w: status %d", ErrUnreachable, ans.Status)
	}
	se := &StatusError{Status: ans.Status, Method: method, URL: c.server + path, ServerURL: c.server, unsigned: apiStatus}
	if r := ans.answeredBy; r != nil {
		u := *r.URL
		u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
		se.From, se.fromMethod, se.Method, se.URL = se.URL, se.Method, r.Method, u.Redacted()
	}
	return se
}

// trust checks the signature and the nonce of a fresh answer and returns
// its signed date. The date is not compared with the local clock: the nonce
// already proves the answer is fresh.
func (c *Client) trust(ans signedAnswer, nonce string) (time.Time, error) {
	if ans.Signature == "" {
		return time.Time{}, fmt.Errorf("%w: the answer (status %d) carries no %s header; if Config.ServerURL (%s) is not the URL under which the license server serves %s/, correct it",
			ErrUntrusted, ans.Status, wire.SignatureHeader, c.server, wire.APIPrefix)
	}
	if err := c.keys.verifyAnswer(ans.Status, ans.Signature, ans.Date, ans.Body); err != nil {
		return time.Time{}, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	var b struct {
		Nonce string `json:"nonce"`
	}
	if json.Unmarshal(ans.Body, &b) != nil || b.Nonce != nonce {
		return time.Time{}, fmt.Errorf("%w: the answer is not for this request (replayed?)", ErrUntrusted)
	}
	date, err := http.ParseTime(ans.Date)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: no valid date", ErrUntrusted)
	}
	return date, nil
}

// answerLicense verifies a (fresh or cached) signed answer and turns it into
// a License. It checks the signature and that the nonce is this client's.
func (c *Client) answerLicense(ans signedAnswer) (License, error) {
	if err := c.keys.verifyAnswer(ans.Status, ans.Signature, ans.Date, ans.Body); err != nil {
		return License{}, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	var b wire.ValidateAnswer // a refusal's valid, plan, billingUrl and nonce read the same
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
		BillingURL: b.BillingURL, CheckedAt: date, ValidUntil: date.Add(c.cfg.GracePeriod),
	}
	if b.CurrentPeriodEnd != nil {
		lic.CurrentPeriodEnd = time.Time(*b.CurrentPeriodEnd)
	}
	if b.TrialEndsAt != nil {
		lic.TrialEndsAt = time.Time(*b.TrialEndsAt)
	}
	if b.TrialDaysLeft != nil {
		lic.TrialDaysLeft = *b.TrialDaysLeft
	}
	if b.ExpiresAt != nil { // also on the 401 of an expired key
		lic.KeyExpiresAt = time.Time(*b.ExpiresAt).UTC()
		if lic.KeyExpiresAt.Before(lic.ValidUntil) {
			lic.ValidUntil = lic.KeyExpiresAt // a kept answer never outlives the key
		}
	}
	if lic.Features == nil {
		lic.Features = map[string]any{}
	}
	return lic, nil
}

// answerError maps a verified refusal to its error, which carries the
// server's text.
func (c *Client) answerError(ans signedAnswer) error {
	var b wire.ErrorAnswer
	json.Unmarshal(ans.Body, &b)
	switch {
	case ans.Status == http.StatusUnauthorized && b.ExpiresAt != nil:
		return &refusal{ErrKeyExpired, b.Error}
	case ans.Status == http.StatusUnauthorized:
		return &refusal{ErrInvalidKey, b.Error}
	case ans.Status == http.StatusForbidden && b.Plan != "":
		return &refusal{ErrPlanNotEligible, b.Error}
	case ans.Status == http.StatusForbidden && strings.HasPrefix(b.Error, wire.SeatLimitMessage):
		return &refusal{ErrSeatLimit, b.Error}
	case ans.Status == http.StatusForbidden:
		return &refusal{ErrInactive, b.Error}
	}
	return fmt.Errorf("%w: status %d", ErrUnreachable, ans.Status)
}

// maxAnswerBytes bounds what the client reads of an answer.
const maxAnswerBytes = 1 << 20

// do sends a request to the server (a POST of body, or a GET when body is
// nil) and reads the answer. Network failures, unreadable or oversized
// answers, and redirects to another origin wrap ErrUnreachable.
func (c *Client) do(ctx context.Context, path string, body []byte) (signedAnswer, time.Duration, error) {
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
	res, err := c.http.Do(req)
	if err != nil {
		return signedAnswer{}, 0, fmt.Errorf("%w: %w", ErrUnreachable, err)
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
	ans := signedAnswer{Status: res.StatusCode, Date: wire.SignedDate(res.Header),
		Signature: res.Header.Get(wire.SignatureHeader), Body: b}
	if r := res.Request; r != nil && (r.Method != req.Method || r.URL.String() != req.URL.String()) {
		ans.answeredBy = r // a redirect within the origin
	}
	return ans, retry, nil
}

// origin is a URL's scheme, host and port, the port made explicit.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// guard returns a copy of hc that follows a redirect only within the
// server's origin (and then as hc would), so that a request carrying the
// license key never goes anywhere else.
func guard(hc *http.Client, server *url.URL) *http.Client {
	g := *hc
	if g.Timeout == 0 {
		g.Timeout = defaultTimeout // a check must end: a slow server cannot stall Run
	}
	want, next := origin(server), hc.CheckRedirect
	g.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if origin(req.URL) != want {
			return fmt.Errorf("%w (to %s)", ErrRedirect, origin(req.URL))
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("client: stopped after 10 redirects")
		}
		return nil
	}
	return &g
}
