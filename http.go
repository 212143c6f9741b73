package licensing

import (
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// APIPrefix is the path prefix of every route.
const APIPrefix = "/api/v1/licensing"

// HandlerConfig is the HTTP side of the API: what only the transport needs.
// NewHandler fills in the defaults documented on each field.
type HandlerConfig struct {
	// RateLimit is the validations per minute allowed per client address
	// (validate and revocations); 0 turns the limiter off, as the reference
	// server's -rate-limit 0 does. The reference server's default is 30.
	RateLimit int
	// RateBurst is how many validations a client address may send at once.
	// Default: RateLimit.
	RateBurst int
	// MaxTrackedClients bounds the rate limiter's memory: at most about
	// twice this many addresses are remembered. Default 100,000.
	MaxTrackedClients int
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed. Default none: the client address is the TCP peer.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds request bodies. Default 64 KiB.
	MaxBodyBytes int64
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
	limiter *rateLimiter // nil when off
	mux     *http.ServeMux
}

// NewHandler returns the http.Handler for svc, with owner routes
// authenticated by auth and the transport configured by cfg. It serves the
// routes under APIPrefix, and the same routes with the prefix already
// stripped, so it can be mounted with http.ServeMux ("/api/v1/licensing/"),
// http.StripPrefix, or any router. The prefix is matched only at the start
// of the path. A nil svc or auth, or a negative limit, panics: that is a
// programming error.
func NewHandler(svc *Service, auth Authenticator, cfg HandlerConfig) *Handler {
	if svc == nil || auth == nil {
		panic("licensing: NewHandler needs a Service and an Authenticator")
	}
	if cfg.RateLimit < 0 || cfg.RateBurst < 0 || cfg.MaxTrackedClients < 0 || cfg.MaxBodyBytes < 0 {
		panic("licensing: HandlerConfig limits must not be negative")
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = cfg.RateLimit
	}
	if cfg.MaxTrackedClients == 0 {
		cfg.MaxTrackedClients = 100_000
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = svc.cfg.Logger
	}
	h := &Handler{svc: svc, auth: auth, cfg: cfg, mux: http.NewServeMux()}
	if cfg.RateLimit > 0 {
		h.limiter = newRateLimiter(float64(cfg.RateLimit)/60, cfg.RateBurst, cfg.MaxTrackedClients, svc.cfg.Now)
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
		{http.MethodPost, "/keys", h.createKey},
		{http.MethodGet, "/keys", h.listKeys},
		{http.MethodDelete, "/keys/{id}", h.revokeKey},
		{http.MethodPost, "/keys/{id}/jwt", h.issueToken},
		{http.MethodGet, "/public-keys", h.publicKeys},
		{http.MethodGet, "/revocations", h.revocations},
		{http.MethodPost, "/validate", h.validate},
	}
	allow := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		if allow[rt.path] == nil {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		for _, prefix := range []string{"", APIPrefix} {
			h.mux.HandleFunc(rt.method+" "+prefix+rt.path, rt.serve)
		}
	}
	for _, p := range paths {
		slices.Sort(allow[p])
		methods := strings.Join(allow[p], ", ")
		notAllowed := func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			h.fail(w, r, reply{}, &Error{Code: codeMethodNotAllowed, Message: "Method not allowed; use " + methods + "."})
		}
		for _, prefix := range []string{"", APIPrefix} {
			h.mux.HandleFunc(prefix+p, notAllowed)
		}
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, reply{}, &Error{Code: CodeNotFound, Message: "Not found."})
	})
}

// ServeHTTP routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// actor authenticates an owner request, answering the failure itself.
func (h *Handler) actor(w http.ResponseWriter, r *http.Request) (Actor, bool) {
	a, err := h.auth.Authenticate(r)
	if err != nil {
		h.fail(w, r, reply{}, err)
		return Actor{}, false
	}
	return a, true
}

type createRequest struct {
	InstanceName string `json:"instanceName"`
}

type createResponse struct {
	ID           string   `json:"id"`
	LicenseKey   string   `json:"licenseKey"`
	InstanceName *string  `json:"instanceName"`
	Active       bool     `json:"active"`
	CreatedAt    jsonTime `json:"createdAt"`
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
		CreatedAt:    jsonTime(created.Key.CreatedAt),
	})
}

type listedKey struct {
	ID              string             `json:"id"`
	LicenseKey      string             `json:"licenseKey"`
	InstanceName    *string            `json:"instanceName"`
	InstanceURL     *string            `json:"instanceUrl"`
	Active          bool               `json:"active"`
	LastValidatedAt jsonTime           `json:"lastValidatedAt"`
	ActivatedAt     jsonTime           `json:"activatedAt"`
	CreatedAt       jsonTime           `json:"createdAt"`
	InstanceMetrics map[string]float64 `json:"instanceMetrics"`
	LastViolations  []string           `json:"lastViolations"`
}

func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	keys, err := h.svc.ListKeys(r.Context(), a)
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	out := make([]listedKey, len(keys))
	for i, k := range keys {
		out[i] = listedKey{
			ID:              k.ID,
			LicenseKey:      k.MaskedKey,
			InstanceName:    optString(k.InstanceName),
			InstanceURL:     optString(k.InstanceURL),
			Active:          k.Active,
			LastValidatedAt: jsonTime(k.LastValidatedAt),
			ActivatedAt:     jsonTime(k.ActivatedAt),
			CreatedAt:       jsonTime(k.CreatedAt),
			InstanceMetrics: k.LastMetrics,
			LastViolations:  k.LastViolations,
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	h.respond(w, reply{}, http.StatusOK, struct {
		Keys []listedKey `json:"keys"`
	}{out})
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
		JWT       string   `json:"jwt"`
		ExpiresAt jsonTime `json:"expiresAt"`
		Plan      string   `json:"plan"`
	}{tok.JWT, jsonTime(tok.ExpiresAt), tok.Plan})
}

func (h *Handler) publicKeys(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(append(h.svc.cfg.Signing.JWKS(), '\n'))
}

// revocations answers GET /revocations?org=<id>[&nonce=<n>] with the signed
// list of the organization's revoked key ids (the jti of their tokens).
func (h *Handler) revocations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	org, nonce := q.Get("org"), q.Get("nonce")
	rp, nonceErr := signedReply(nonce, false)
	if !h.allow(w, r, rp) {
		return
	}
	if nonceErr != nil {
		h.fail(w, r, rp, nonceErr)
		return
	}
	if org == "" || len(org) > 255 {
		h.fail(w, r, rp, &Error{Code: CodeInvalid, Message: "org is required"})
		return
	}
	ids, err := h.svc.RevokedKeyIDs(r.Context(), org)
	if err != nil {
		h.fail(w, r, rp, err)
		return
	}
	h.respond(w, rp, http.StatusOK, struct {
		OrganizationID string   `json:"organizationId"`
		Revoked        []string `json:"revoked"`
		Nonce          string   `json:"nonce,omitempty"`
	}{org, ids, rp.nonce})
}

type validateRequest struct {
	LicenseKey   string             `json:"licenseKey"`
	InstanceName string             `json:"instanceName"`
	InstanceURL  string             `json:"instanceUrl"`
	InstanceID   string             `json:"instanceId"`
	Metrics      map[string]float64 `json:"metrics"`
	Nonce        string             `json:"nonce"`
}

type validateResponse struct {
	Valid            bool           `json:"valid"`
	Plan             string         `json:"plan"`
	Features         map[string]any `json:"features"`
	OrganizationID   string         `json:"organizationId"`
	OrganizationName string         `json:"organizationName"`
	Violations       []string       `json:"violations"`
	CurrentPeriodEnd *jsonTime      `json:"currentPeriodEnd,omitempty"`
	TrialEndsAt      *jsonTime      `json:"trialEndsAt,omitempty"`
	TrialDaysLeft    *int           `json:"trialDaysLeft,omitempty"`
	BillingURL       string         `json:"billingUrl"`
	Nonce            string         `json:"nonce,omitempty"`
}

func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	w.Header()["Cache-Control"] = headerNoStore
	var req validateRequest
	if err := h.decode(w, r, &req); err != nil {
		if h.allow(w, r, reply{validate: true}) {
			h.fail(w, r, reply{validate: true}, err)
		}
		return
	}
	rp, nonceErr := signedReply(req.Nonce, true)
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
	out := validateResponse{
		Valid:            true,
		Plan:             res.Plan,
		Features:         res.Features,
		OrganizationID:   res.OrganizationID,
		OrganizationName: res.OrganizationName,
		Violations:       res.Violations,
		BillingURL:       res.BillingURL,
		Nonce:            rp.nonce,
	}
	if !res.CurrentPeriodEnd.IsZero() {
		t := jsonTime(res.CurrentPeriodEnd)
		out.CurrentPeriodEnd = &t
	}
	if !res.TrialEndsAt.IsZero() {
		t, d := jsonTime(res.TrialEndsAt), res.TrialDaysLeft
		out.TrialEndsAt, out.TrialDaysLeft = &t, &d
	}
	buf := getBuf()
	defer putBuf(buf)
	b, err := appendValidateResponse(*buf, &out)
	if err != nil {
		h.cfg.Logger.Error("licensing: encode answer", "err", err)
		h.write(w, rp, http.StatusInternalServerError, []byte(`{"error":"Internal error."}`+"\n")) // as respond does
		return
	}
	*buf = append(b, '\n')
	h.write(w, rp, http.StatusOK, *buf)
}
