package licensing

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/maphash"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Authenticator maps an owner request to its Actor. The request's context is
// the call's context.
//
// It must honour the X-Organization header (OrganizationHeader): when present,
// the Actor's OrganizationID is that organization if the user belongs to it;
// when absent, the user's default organization. It returns an error whose
// code is CodeUnauthorized (for example ErrUnauthorized) for a missing,
// malformed or unknown credential, and ErrOrgNotFound when the chosen
// organization does not exist or the user does not belong to it.
// BearerToken and ResolveActor do the HTTP parts of that.
type Authenticator interface {
	Authenticate(r *http.Request) (Actor, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (Actor, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (Actor, error) { return f(r) }

// OrganizationHeader picks the organization of a user who belongs to several.
const OrganizationHeader = "X-Organization"

// ResolveActor is the X-Organization rule for Authenticator implementations:
// given the authenticated user and the organizations they own or belong to
// (the first is their default), it returns the organization the header
// names if it is one of them, else the default; ErrOrgNotFound when the
// header names another organization or the user has none.
func ResolveActor(r *http.Request, userID string, orgIDs []string) (Actor, error) {
	want := r.Header.Get(OrganizationHeader)
	for _, o := range orgIDs {
		if want == "" || o == want {
			return Actor{UserID: userID, OrganizationID: o}, nil
		}
	}
	return Actor{}, ErrOrgNotFound
}

// MaxTokenLength bounds the bearer token BearerToken accepts.
const MaxTokenLength = 4096

// BearerToken returns the token of an "Authorization: Bearer <token>" header.
// A missing header, another scheme, an empty or over-long token, or a token
// with spaces or control characters gives ErrUnauthorized.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrUnauthorized
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || len(token) > MaxTokenLength || strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return "", ErrUnauthorized
	}
	return token, nil
}

// APIPrefix is the path prefix of every route.
const APIPrefix = "/api/v1/licensing"

// Handler serves the HTTP API of API.md. Create it with NewHandler.
type Handler struct {
	svc     *Service
	auth    Authenticator
	limiter *rateLimiter // nil when off
	proxies []netip.Prefix
	maxBody int64
}

// NewHandler returns the http.Handler for svc, with owner routes
// authenticated by auth. It serves paths under APIPrefix, and also the same
// paths with the prefix already stripped, so it can be mounted with
// http.ServeMux ("/api/v1/licensing/"), http.StripPrefix, or any router. The
// validate route is rate limited per client address as svc's Config says.
func NewHandler(svc *Service, auth Authenticator) *Handler {
	if svc == nil || auth == nil {
		panic("licensing: NewHandler needs a Service and an Authenticator")
	}
	h := &Handler{svc: svc, auth: auth, proxies: svc.cfg.TrustedProxies, maxBody: svc.cfg.MaxBodyBytes}
	if svc.cfg.RateLimit > 0 {
		h.limiter = newRateLimiter(float64(svc.cfg.RateLimit)/60, svc.cfg.RateBurst, svc.cfg.MaxTrackedClients, svc.cfg.Now)
	}
	return h
}

// ServeHTTP routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if i := strings.Index(path, APIPrefix+"/"); i >= 0 {
		path = path[i+len(APIPrefix):]
	}
	switch {
	case path == "/keys":
		switch r.Method {
		case http.MethodPost:
			h.createKey(w, r)
		case http.MethodGet:
			h.listKeys(w, r)
		default:
			methodNotAllowed(w, "GET, POST")
		}
	case strings.HasPrefix(path, "/keys/") && !strings.Contains(path[len("/keys/"):], "/"):
		if r.Method != http.MethodDelete {
			methodNotAllowed(w, "DELETE")
			return
		}
		h.revokeKey(w, r, path[len("/keys/"):])
	case strings.HasPrefix(path, "/keys/") && strings.HasSuffix(path, "/jwt") &&
		strings.Count(path, "/") == 3:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		h.issueToken(w, r, strings.TrimSuffix(path[len("/keys/"):], "/jwt"))
	case path == "/public-keys":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(append(h.svc.cfg.Signing.JWKS(), '\n'))
	case path == "/revocations":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
		h.revocations(w, r)
	case path == "/validate":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		h.validate(w, r)
	default:
		writeError(w, &Error{Code: CodeNotFound, Message: "Not found."})
	}
}

// fail writes err as the answer; failures of the server's own (5xx) are
// logged with their cause, which never holds a key or token.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if StatusCode(err) >= 500 {
		h.svc.cfg.Logger.Error("licensing: request failed", "method", r.Method, "route", r.URL.Path, "err", err)
	}
	writeError(w, err)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, &Error{Code: CodeMethodNotAllowed, Message: "Method not allowed; use " + allow + "."})
}

func (h *Handler) actor(w http.ResponseWriter, r *http.Request) (Actor, bool) {
	a, err := h.auth.Authenticate(r)
	if err != nil {
		h.fail(w, r, err)
		return Actor{}, false
	}
	return a, true
}

type createRequest struct {
	InstanceName *string `json:"instanceName"`
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
		writeError(w, err)
		return
	}
	var in CreateKeyInput
	if req.InstanceName != nil {
		in.InstanceName = *req.InstanceName
	}
	created, err := h.svc.CreateKey(r.Context(), a, in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createResponse{
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
		h.fail(w, r, err)
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
	writeJSON(w, http.StatusOK, struct {
		Keys []listedKey `json:"keys"`
	}{out})
}

func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request, id string) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	if err := h.svc.RevokeKey(r.Context(), a, id); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
	}{"revoked"})
}

func (h *Handler) issueToken(w http.ResponseWriter, r *http.Request, id string) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	tok, err := h.svc.IssueToken(r.Context(), a, id, r.URL.Query().Get("alg"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		JWT       string   `json:"jwt"`
		ExpiresAt jsonTime `json:"expiresAt"`
		Plan      string   `json:"plan"`
	}{tok.JWT, jsonTime(tok.ExpiresAt), tok.Plan})
}

// revocations answers GET /revocations?org=<id>[&nonce=<n>] with the signed
// list of the organization's revoked key ids (the jti of their tokens).
func (h *Handler) revocations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	org, nonce := q.Get("org"), q.Get("nonce")
	if !h.allow(w, r, nonce) {
		return
	}
	if org == "" || len(org) > 255 {
		h.writeSigned(w, http.StatusBadRequest, struct {
			Error string `json:"error"`
			Nonce string `json:"nonce,omitempty"`
		}{"org is required", nonce})
		return
	}
	if err := checkNonce(nonce); err != nil {
		writeError(w, err)
		return
	}
	ids, err := h.svc.RevokedKeyIDs(r.Context(), org)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeSigned(w, http.StatusOK, struct {
		OrganizationID string   `json:"organizationId"`
		Revoked        []string `json:"revoked"`
		Nonce          string   `json:"nonce,omitempty"`
	}{org, ids, nonce})
}

// MaxNonceLength bounds the nonce of signed requests.
const MaxNonceLength = 128

func checkNonce(n string) error {
	if len(n) > MaxNonceLength || strings.IndexFunc(n, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
		return &Error{Code: CodeInvalid, Message: "nonce must be at most 128 printable ASCII characters"}
	}
	return nil
}

// allow applies the per-address rate limit; a refused request with a nonce
// gets a signed 429.
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, nonce string) bool {
	if h.limiter == nil {
		return true
	}
	wait, ok := h.limiter.allow(h.clientAddr(r))
	if ok {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	if nonce != "" && checkNonce(nonce) == nil {
		h.writeSigned(w, http.StatusTooManyRequests, struct {
			Error string `json:"error"`
			Nonce string `json:"nonce"`
		}{ErrRateLimited.Message, nonce})
	} else {
		writeError(w, ErrRateLimited)
	}
	return false
}

// writeSigned writes v as JSON with a Date header and a Licensing-Signature
// over status, key id, date and the exact body bytes.
func (h *Handler) writeSigned(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	b = append(b, '\n')
	date := h.svc.cfg.Now().UTC().Format(http.TimeFormat)
	hdr := w.Header()
	hdr.Set("Date", date)
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set(SignatureHeader, h.svc.cfg.Signing.signAnswer(status, date, b))
	w.WriteHeader(status)
	w.Write(b)
}

type validateRequest struct {
	LicenseKey   *string            `json:"licenseKey"`
	InstanceName *string            `json:"instanceName"`
	InstanceURL  *string            `json:"instanceUrl"`
	InstanceID   *string            `json:"instanceId"`
	Metrics      map[string]float64 `json:"metrics"`
	Nonce        *string            `json:"nonce"`
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

type validateError struct {
	Valid      *bool  `json:"valid,omitempty"` // false on 401 and 403
	Error      string `json:"error"`
	Plan       string `json:"plan,omitempty"`
	BillingURL string `json:"billingUrl,omitempty"`
	Nonce      string `json:"nonce,omitempty"`
}

func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	var req validateRequest
	if err := h.decode(w, r, &req); err != nil {
		if h.allow(w, r, "") {
			writeError(w, err)
		}
		return
	}
	nonce := ""
	if req.Nonce != nil {
		nonce = *req.Nonce
	}
	if !h.allow(w, r, nonce) {
		return
	}
	// answer writes the outcome, signed when the request carried a nonce.
	answer := func(status int, v any) {
		w.Header().Set("Cache-Control", "no-store")
		if nonce != "" {
			h.writeSigned(w, status, v)
		} else {
			writeJSON(w, status, v)
		}
	}
	if err := checkNonce(nonce); err != nil {
		writeError(w, err)
		return
	}
	if req.LicenseKey == nil {
		answer(http.StatusBadRequest, validateError{Error: ErrLicenseKeyRequired.Message, Nonce: nonce})
		return
	}
	in := ValidateInput{LicenseKey: *req.LicenseKey, Metrics: req.Metrics}
	if req.InstanceName != nil {
		in.InstanceName = *req.InstanceName
	}
	if req.InstanceURL != nil {
		in.InstanceURL = *req.InstanceURL
	}
	if req.InstanceID != nil {
		in.InstanceID = *req.InstanceID
	}
	res, err := h.svc.ValidateKey(r.Context(), in)
	if err != nil {
		status := StatusCode(err)
		if status >= 500 {
			h.fail(w, r, err)
			return
		}
		body := validateError{Error: ErrorMessage(err), Plan: res.Plan, BillingURL: res.BillingURL, Nonce: nonce}
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			body.Valid = new(bool)
		}
		answer(status, body)
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
		Nonce:            nonce,
	}
	if !res.CurrentPeriodEnd.IsZero() {
		t := jsonTime(res.CurrentPeriodEnd)
		out.CurrentPeriodEnd = &t
	}
	if !res.TrialEndsAt.IsZero() {
		t, d := jsonTime(res.TrialEndsAt), res.TrialDaysLeft
		out.TrialEndsAt, out.TrialDaysLeft = &t, &d
	}
	answer(http.StatusOK, out)
}

// clientAddr is the address the rate limiter counts: the TCP peer, or, when
// the peer is a trusted proxy, the right-most X-Forwarded-For address that is
// not one.
func (h *Handler) clientAddr(r *http.Request) netip.Addr {
	addr := parseAddr(r.RemoteAddr)
	if len(h.proxies) == 0 || !trusted(h.proxies, addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // garbage: count the proxy itself
		}
		a = a.Unmap()
		if !trusted(h.proxies, a) {
			return a
		}
		addr = a
	}
	return addr
}

func trusted(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func parseAddr(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// decode reads a bounded JSON body into v. An empty body means no fields.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{Code: CodeTooLarge, Message: "Request body too large; the limit is " + strconv.FormatInt(h.maxBody, 10) + " bytes."}
		}
		return &Error{Code: CodeInvalid, Message: "Could not read the request body.", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &Error{Code: CodeUnsupportedMedia, Message: "Request body must be JSON (Content-Type: application/json)."}
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			if typeErr.Field == "metrics" && typeErr.Type.Kind().String() == "float64" {
				return &Error{Code: CodeInvalid, Message: "metrics values must be numbers"}
			}
			return &Error{Code: CodeInvalid, Message: typeErr.Field + " must be " + jsonKind(typeErr.Type.Kind().String())}
		}
		return &Error{Code: CodeInvalid, Message: "Malformed JSON body."}
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string", "ptr":
		return "a string"
	case "float64":
		return "a number"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, StatusCode(err), struct {
		Error string `json:"error"`
	}{ErrorMessage(err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal error."}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// TimeLayout is the API's time format: UTC with a numeric offset, seconds.
const TimeLayout = "2006-01-02T15:04:05-07:00"

// jsonTime encodes as TimeLayout in UTC, or null when zero.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + tt.UTC().Format(TimeLayout) + `"`), nil
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// rateLimiter is a token bucket per client address. Its memory is bounded:
// each shard keeps two generations of buckets and drops the older one when
// the newer fills, so at most about 2*max addresses are remembered. An
// address forgotten that way starts again with a full bucket, which only
// happens under a flood of distinct addresses.
type rateLimiter struct {
	rate   float64 // tokens per second
	burst  float64
	now    func() time.Time
	seed   maphash.Seed
	shards [32]limiterShard
}

type limiterShard struct {
	mu       sync.Mutex
	max      int
	cur, old map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(perSecond float64, burst, maxClients int, now func() time.Time) *rateLimiter {
	l := &rateLimiter{rate: perSecond, burst: float64(burst), now: now, seed: maphash.MakeSeed()}
	per := maxClients / len(l.shards)
	if per < 1 {
		per = 1
	}
	for i := range l.shards {
		l.shards[i] = limiterShard{max: per, cur: map[netip.Addr]*bucket{}, old: map[netip.Addr]*bucket{}}
	}
	return l
}

// clientKey groups IPv6 clients by /64, the block one customer usually has.
func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// allow takes a token for addr, or says how long until one is available.
func (l *rateLimiter) allow(addr netip.Addr) (time.Duration, bool) {
	addr = clientKey(addr)
	b16 := addr.As16()
	s := &l.shards[maphash.Bytes(l.seed, b16[:])%uint64(len(l.shards))]
	now := l.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.cur[addr]
	if !ok {
		if b, ok = s.old[addr]; ok {
			delete(s.old, addr)
		} else {
			b = &bucket{tokens: l.burst, last: now}
		}
		if len(s.cur) >= s.max {
			s.old, s.cur = s.cur, make(map[netip.Addr]*bucket, s.max/4)
		}
		s.cur[addr] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}

// tracked returns how many addresses the limiter remembers.
func (l *rateLimiter) tracked() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.old)
		s.mu.Unlock()
	}
	return n
}
