package licensing

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/licensekit/licensing/internal/wire"
)

// APIPrefix is the path prefix of every route.
const APIPrefix = wire.APIPrefix

// HandlerConfig is the HTTP side of the API: what only the transport needs.
// Its zero value is the safe one: every limit at the reference server's
// default. NewHandler fills in the defaults documented on each field;
// turning a rate limiter off takes Unlimited, and a negative or
// nonsensical value makes NewHandler panic with the field's name.
type HandlerConfig struct {
	// RateLimit is the validations per minute allowed per client address
	// (validate and revocations). 0 means DefaultRateLimit (30, the
	// reference server's -rate-limit default); Unlimited turns the limiter
	// off, as the reference server's -rate-limit 0 does.
	RateLimit int
	// RateBurst is how many validations a client address may send at once.
	// Default: RateLimit.
	RateBurst int
	// OwnerRateLimit is the owner requests per minute allowed per user
	// (create, list, revoke, token), after authentication. 0 means
	// DefaultOwnerRateLimit (120, the reference server's
	// -owner-rate-limit default); Unlimited turns it off, and with it the
	// count of failed authentications.
	// The burst is a quarter of a minute's worth, at least 5. Failed
	// authentications (401) are counted the same way per client address:
	// each attempt takes a token before its credential is tried and a
	// success gives it back, so tokens cannot be guessed faster, even
	// concurrently, and one address has at most a burst's worth of
	// authentications in flight (a backend that forwards many owners'
	// requests belongs in TrustedProxies).
	OwnerRateLimit int
	// MaxTrackedClients bounds the rate limiters' memory: at most about
	// twice this many addresses are remembered. Default 100,000; it
	// cannot be turned off.
	MaxTrackedClients int
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed. Default none: the client address is the TCP peer. A
	// network holding every address (0.0.0.0/0, ::/0) is refused: any
	// client could choose the address it is counted as.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds request bodies. Default 64 KiB; it cannot be
	// turned off.
	MaxBodyBytes int64
	// TrustedOrigins are origins ("https://admin.example.com") whose
	// browser requests may reach the owner routes with ambient credentials
	// (cookies). Owner requests without an Authorization header from any
	// other origin are refused (see http.CrossOriginProtection); requests
	// with one cannot be forged by another site and are not checked.
	TrustedOrigins []string
	// Logger receives the cause of every 5xx answer. Default: the
	// Service's Logger.
	Logger *slog.Logger
}

// Handler serves the HTTP API documented in docs/API.md (and
// docs/openapi.yaml). Create it with NewHandler.
type Handler struct {
	svc     *Service
	auth    Authenticator
	cfg     HandlerConfig
	limiter *rateLimiter[netip.Addr] // nil when off
	owners  *rateLimiter[string]     // per user; nil when off
	guesses *rateLimiter[netip.Addr] // failed authentications per address; nil when the owner limit is off
	origins *http.CrossOriginProtection
	obs     Observer // nil when off
	mux     *http.ServeMux
}

// NewHandler returns the http.Handler for svc, with owner routes
// authenticated by auth and the transport configured by cfg (whose zero
// fields take their defaults). It serves the
// routes under APIPrefix, and the same routes with the prefix already
// stripped, so it can be mounted with http.ServeMux ("/api/v1/licensing/"),
// http.StripPrefix, or any router. The prefix is matched only at the start
// of the path. A nil svc or auth, or a HandlerConfig value that cannot work
// (a negative limit other than Unlimited, a trusted network holding every
// address, a malformed trusted origin), panics with the field's name: that
// is a programming error.
func NewHandler(svc *Service, auth Authenticator, cfg HandlerConfig) *Handler {
	if svc == nil || auth == nil {
		panic("licensing: NewHandler needs a Service and an Authenticator")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		panic(err.Error())
	}
	if cfg.Logger == nil {
		cfg.Logger = svc.cfg.Logger
	}
	h := &Handler{svc: svc, auth: auth, cfg: cfg, mux: http.NewServeMux(), origins: http.NewCrossOriginProtection(), obs: svc.cfg.Observer}
	for _, o := range cfg.TrustedOrigins {
		if err := h.origins.AddTrustedOrigin(o); err != nil {
			panic("licensing: HandlerConfig.TrustedOrigins: " + err.Error())
		}
	}
	if cfg.RateLimit > 0 {
		h.limiter = newRateLimiter[netip.Addr](float64(cfg.RateLimit)/60, cfg.RateBurst, cfg.MaxTrackedClients, svc.cfg.Now)
	}
	if cfg.OwnerRateLimit > 0 {
		h.owners = newRateLimiter[string](float64(cfg.OwnerRateLimit)/60, max(5, cfg.OwnerRateLimit/4), cfg.MaxTrackedClients, svc.cfg.Now)
		h.guesses = newRateLimiter[netip.Addr](float64(cfg.OwnerRateLimit)/60, max(5, cfg.OwnerRateLimit/4), cfg.MaxTrackedClients, svc.cfg.Now)
	}
	h.routes()
	return h
}

// routes registers every route with the standard library's method and
// wildcard patterns, with and without APIPrefix. A path known under other
// methods answers 405 with Allow; any other path 404.
func (h *Handler) routes() {
	routes := []struct {
		method, path string
		serve        http.HandlerFunc
	}{
		{http.MethodPost, wire.PathKeys, h.createKey},
		{http.MethodGet, wire.PathKeys, h.listKeys},
		{http.MethodDelete, wire.PathKey, h.revokeKey},
		{http.MethodPost, wire.PathKeyToken, h.issueToken},
		{http.MethodGet, wire.PathPublicKeys, h.publicKeys},
		{http.MethodGet, wire.PathPublicKeysPEM, h.publicKeysPEM},
		{http.MethodGet, wire.PathRevocations, h.revocations},
		{http.MethodPost, wire.PathValidate, h.validate},
	}
	allow := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		if allow[rt.path] == nil {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		if rt.method == http.MethodGet { // a GET pattern serves HEAD too
			allow[rt.path] = append(allow[rt.path], http.MethodHead)
		}
		serve := h.observed(rt.method+" "+rt.path, rt.serve)
		for _, prefix := range []string{"", APIPrefix} {
			h.mux.HandleFunc(rt.method+" "+prefix+rt.path, serve)
		}
	}
	for _, p := range paths {
		slices.Sort(allow[p])
		methods := strings.Join(allow[p], ", ")
		notAllowed := h.observed(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			h.fail(w, r, reply{}, &Error{Code: codeMethodNotAllowed, Message: "Method not allowed; use " + methods + "."})
		})
		for _, prefix := range []string{"", APIPrefix} {
			h.mux.HandleFunc(prefix+p, notAllowed)
		}
	}
	h.mux.HandleFunc("/", h.observed(RouteUnmatched, func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, reply{}, &Error{Code: CodeNotFound, Message: "Not found."})
	}))
}

// ServeHTTP routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// actor authenticates an owner request, answering the failure itself. A
// browser request from another origin that relies on ambient credentials
// (no Authorization header) is refused before the authenticator runs.
func (h *Handler) actor(w http.ResponseWriter, r *http.Request) (Actor, bool) {
	// A repeated credential or organization is ambiguous: an authenticator
	// reading the first and a proxy checking the last would disagree.
	if len(r.Header.Values("Authorization")) > 1 {
		h.fail(w, r, reply{}, ErrUnauthorized)
		return Actor{}, false
	}
	if len(r.Header.Values(OrganizationHeader)) > 1 {
		h.fail(w, r, reply{}, &Error{Code: CodeInvalid, Message: OrganizationHeader + " must be sent at most once"})
		return Actor{}, false
	}
	if r.Header.Get("Authorization") == "" {
		if err := h.origins.Check(r); err != nil {
			h.fail(w, r, reply{}, ErrCrossOrigin)
			return Actor{}, false
		}
	}
	// Failed authentications are counted per address, at the owner rate:
	// an address out of tokens is refused before its credential is tried,
	// so nobody can guess tokens faster than the owner limit.
	// Each attempt takes a token before the credential is tried (so
	// concurrent guesses cannot all get through), and a success gives it
	// back.
	var addr netip.Addr
	if h.guesses != nil {
		addr = clientKey(h.clientAddr(r))
		if wait, ok := h.guesses.allow(addr); !ok {
			tooMany(w, wait)
			h.fail(w, r, reply{}, ErrRateLimited)
			return Actor{}, false
		}
	}
	a, err := h.auth.Authenticate(r)
	if h.guesses != nil && ErrorCode(err) != CodeUnauthorized {
		h.guesses.refund(addr) // not a failed guess
	}
	if err != nil {
		h.fail(w, r, reply{}, err)
		return Actor{}, false
	}
	if h.owners != nil {
		if wait, ok := h.owners.allow(a.UserID); !ok {
			tooMany(w, wait)
			h.fail(w, r, reply{}, ErrRateLimited)
			return Actor{}, false
		}
	}
	return a, true
}

type createRequest struct {
	InstanceName string `json:"instanceName"`
}

type createResponse struct {
	ID           string    `json:"id"`
	LicenseKey   string    `json:"licenseKey"`
	InstanceName *string   `json:"instanceName"`
	Active       bool      `json:"active"`
	CreatedAt    wire.Time `json:"createdAt"`
}

func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	var req createRequest
	if err := h.decode(w, r, &req); err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	created, err := h.svc.CreateKey(r.Context(), a, CreateKeyInput{InstanceName: req.InstanceName})
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.respond(w, reply{}, http.StatusCreated, createResponse{
		ID:           created.Key.ID,
		LicenseKey:   created.LicenseKey,
		InstanceName: optString(created.Key.InstanceName),
		Active:       created.Key.Active,
		CreatedAt:    wire.Time(created.Key.CreatedAt),
	})
}

type listedKey struct {
	ID              string             `json:"id"`
	LicenseKey      string             `json:"licenseKey"`
	InstanceName    *string            `json:"instanceName"`
	InstanceURL     *string            `json:"instanceUrl"`
	Active          bool               `json:"active"`
	LastValidatedAt wire.Time          `json:"lastValidatedAt"`
	ActivatedAt     wire.Time          `json:"activatedAt"`
	CreatedAt       wire.Time          `json:"createdAt"`
	InstanceMetrics map[string]float64 `json:"instanceMetrics"`
	LastViolations  []string           `json:"lastViolations"`
}

// maxPageLimit bounds ?limit= on the list route.
const maxPageLimit = 1000

// listKeys answers every key, newest first, streamed a chunk at a time so
// that memory does not grow with the organization; with ?limit= (and
// ?cursor=) it answers one page and its nextCursor.
func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	paged := q.Has("limit") || q.Has("cursor")
	limit := listChunk
	if paged {
		limit = 100
		if q.Has("limit") {
			n, err := strconv.Atoi(q.Get("limit"))
			if err != nil || n < 1 || n > maxPageLimit {
				h.fail(w, r, reply{}, &Error{Code: CodeInvalid, Message: "limit must be a whole number from 1 to 1000"})
				return
			}
			limit = n
		}
	}
	page, err := h.svc.ListKeys(r.Context(), a, q.Get("cursor"), limit)
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	b := append(make([]byte, 0, 4096), `{"organizationId":`...)
	b = appendJSONString(b, page.OrganizationID)
	b = append(b, `,"organizationName":`...)
	b = appendJSONString(b, page.OrganizationName)
	b = append(b, `,"keys":[`...)
	first := true
	for {
		for _, k := range page.Keys {
			if !first {
				b = append(b, ',')
			}
			first = false
			if b, err = appendListedKey(b, k); err != nil {
				panic(http.ErrAbortHandler) // cannot happen for stored keys; never send half a list as whole
			}
		}
		if _, err := w.Write(b); err != nil {
			return
		}
		b = b[:0]
		if paged || page.Next == "" {
			break
		}
		if page, err = h.svc.ListKeys(r.Context(), a, page.Next, limit); err != nil {
			h.cfg.Logger.Error("licensing: list keys: aborted a streamed answer", "err", err)
			panic(http.ErrAbortHandler) // the status is sent: break the answer rather than end it well-formed
		}
	}
	b = append(b, ']')
	if paged {
		b = append(b, `,"nextCursor":`...)
		if page.Next == "" {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendQuote(b, page.Next)
		}
	}
	w.Write(append(b, "}\n"...))
}

func appendListedKey(b []byte, k Key) ([]byte, error) {
	j, err := json.Marshal(listedKey{
		ID:              k.ID,
		LicenseKey:      k.MaskedKey,
		InstanceName:    optString(k.InstanceName),
		InstanceURL:     optString(k.InstanceURL),
		Active:          k.Active,
		LastValidatedAt: wire.Time(k.LastValidatedAt),
		ActivatedAt:     wire.Time(k.ActivatedAt),
		CreatedAt:       wire.Time(k.CreatedAt),
		InstanceMetrics: k.LastMetrics,
		LastViolations:  k.LastViolations,
	})
	return append(b, j...), err
}

func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	if err := h.svc.RevokeKey(r.Context(), a, r.PathValue("id")); err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	h.respond(w, reply{}, http.StatusOK, struct {
		Status string `json:"status"`
	}{"revoked"})
}

func (h *Handler) issueToken(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	tok, err := h.svc.IssueToken(r.Context(), a, r.PathValue("id"), r.URL.Query().Get("alg"))
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.respond(w, reply{}, http.StatusOK, struct {
		JWT       string    `json:"jwt"`
		ExpiresAt wire.Time `json:"expiresAt"`
		Plan      string    `json:"plan"`
	}{tok.JWT, wire.Time(tok.ExpiresAt), tok.Plan})
}

func (h *Handler) publicKeys(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	h.write(w, reply{}, http.StatusOK, append(h.svc.cfg.Signing.JWKS(), '\n'))
}

// publicKeysPEM answers GET /public-keys.pem: the same keys as PEM blocks,
// RSA first (see SigningKeys.PublicKeysPEM).
func (h *Handler) publicKeysPEM(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header()["X-Content-Type-Options"] = headerNosniff
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(h.svc.cfg.Signing.PublicKeysPEM())
}

// revocations answers GET /revocations?org=<id>[&nonce=<n>] with the signed
// list of the organization's revoked key ids (the jti of their tokens).
func (h *Handler) revocations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	org, nonce := q.Get("org"), q.Get("nonce")
	rp, nonceErr := signedReply(nonce, false, true) // revocation lists are always signed
	if !h.allow(w, r, rp) {
		return
	}
	if nonceErr != nil {
		h.fail(w, r, rp, nonceErr)
		return
	}
	if org == "" {
		h.fail(w, r, rp, &Error{Code: CodeInvalid, Message: "org is required"})
		return
	}
	if !wire.IsText(org, wire.MaxOrgIDLength) {
		h.fail(w, r, rp, &Error{Code: CodeInvalid, Message: "org must be at most 255 characters without control or format characters"})
		return
	}
	ids, err := h.svc.RevokedKeyIDs(r.Context(), org)
	if err != nil {
		h.fail(w, r, rp, err)
		return
	}
	h.respond(w, rp, http.StatusOK, wire.RevocationList{OrganizationID: org, Revoked: ids, Nonce: rp.nonce})
}

func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	w.Header()["Cache-Control"] = headerNoStore
	var req wire.ValidateRequest
	if err := h.decode(w, r, &req); err != nil {
		if h.allow(w, r, reply{validate: true}) {
			h.fail(w, r, reply{validate: true}, err)
		}
		return
	}
	rp, nonceErr := signedReply(req.Nonce, true, false)
	if !h.allow(w, r, rp) {
		return
	}
	if nonceErr != nil {
		h.fail(w, r, rp, nonceErr)
		return
	}
	res, err := h.svc.ValidateKey(r.Context(), ValidateInput{LicenseKey: req.LicenseKey,
		InstanceName: req.InstanceName, InstanceURL: req.InstanceURL, InstanceID: req.InstanceID, Metrics: req.Metrics})
	if err != nil {
		rp.plan, rp.billingURL = res.Plan, res.BillingURL
		h.fail(w, r, rp, err)
		return
	}
	out := wire.ValidateAnswer{
		Valid:            true,
		Plan:             res.Plan,
		Features:         res.Features,
		OrganizationID:   res.OrganizationID,
		OrganizationName: res.OrganizationName,
		Violations:       res.Violations,
		BillingURL:       res.BillingURL,
		Nonce:            rp.nonce,
	}
	out.CurrentPeriodEnd = wire.TimeOf(res.CurrentPeriodEnd)
	if !res.TrialEndsAt.IsZero() {
		d := res.TrialDaysLeft
		out.TrialEndsAt, out.TrialDaysLeft = wire.TimeOf(res.TrialEndsAt), &d
	}
	buf := getBuf()
	defer putBuf(buf)
	b, err := appendValidateResponse(*buf, &out)
	if err != nil { // a plan feature JSON cannot hold (NaN, ±Inf)
		rp.validate = false // the Service has counted this validation already
		h.fail(w, r, rp, &Error{Code: CodeInternal, Message: "Internal error.", Err: fmt.Errorf("encode answer: %w", err)})
		return
	}
	*buf = append(b, '\n')
	h.write(w, rp, http.StatusOK, *buf)
}
