package licensing

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

// Codes that only the transport produces.
const (
	codeMethodNotAllowed Code = "method_not_allowed" // 405
	codeTooLarge         Code = "too_large"          // 413
)

// statusByCode is the one table from error codes to HTTP statuses.
var statusByCode = map[Code]int{
	CodeInvalid:          http.StatusBadRequest,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeInvalidLicense:   http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodePlanNotEligible:  http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	codeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeConflict:         http.StatusConflict,
	codeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeRateLimited:      http.StatusTooManyRequests,
	CodeInternal:         http.StatusInternalServerError,
	CodeUnavailable:      http.StatusServiceUnavailable,
	CodeNotImplemented:   http.StatusNotImplemented,
}

// statusCode returns the HTTP status the Handler answers err with (500 for
// errors of no known code).
func statusCode(err error) int {
	if s, ok := statusByCode[ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// reply says how an answer is written.
type reply struct {
	signed     bool   // the answer carries Date, Licensing-Date and Licensing-Signature
	nonce      string // echoed in a signed answer (set only when signed)
	validate   bool   // the validate route: 401 and 403 carry "valid": false
	plan       string // a validate 403 for a plan that is not eligible
	billingURL string
	expiresAt  time.Time // a validate 401 for an expired key
}

// signedReply returns the reply for a request that carried nonce: signed
// when the request has a nonce, or always for a route whose answers are
// always signed. A nonce that breaks the one nonce rule is an error, and
// then nothing is signed or echoed.
func signedReply(nonce string, validate, always bool) (reply, error) {
	if err := checkNonce(nonce); err != nil {
		return reply{validate: validate}, err
	}
	return reply{signed: always || nonce != "", nonce: nonce, validate: validate}, nil
}

// fail is the one error path: the status comes from statusByCode, the body
// is errorBody, the answer is signed when rp carries a nonce, and every 5xx
// is logged once with its cause (which never holds a key or token).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, rp reply, err error) {
	status := statusCode(err)
	h.observeFailure(rp, status)
	if status >= 500 {
		h.cfg.Logger.Error("licensing: request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	body := wire.ErrorAnswer{Error: errorMessage(err), Nonce: rp.nonce}
	if rp.validate && (status == http.StatusUnauthorized || status == http.StatusForbidden) {
		body.Valid = new(bool)
		body.Plan, body.BillingURL = rp.plan, rp.billingURL
		body.ExpiresAt = wire.TimeOf(rp.expiresAt)
	}
	if status == http.StatusUnauthorized && !rp.validate {
		w.Header().Set("WWW-Authenticate", `Bearer realm="licensing"`)
		body.Hint = authHint(r) // from the request's shape alone, never from what the authenticator knows
	}
	h.respond(w, rp, status, body)
}

// respond writes v as the JSON answer with status, signed (Date,
// Licensing-Date and Licensing-Signature headers over the exact body) when
// rp carries a nonce.
func (h *Handler) respond(w http.ResponseWriter, rp reply, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.cfg.Logger.Error("licensing: encode answer", "err", err)
		status, b = http.StatusInternalServerError, []byte(`{"error":"Internal error."}`)
	}
	h.write(w, rp, status, append(b, '\n'))
}

// Header values shared by every answer: net/http only reads them.
var (
	headerJSON    = []string{"application/json"}
	headerNosniff = []string{"nosniff"}
	headerNoStore = []string{"no-store"}
)

// write sends b, an encoded answer ending in a newline, with status, signed
// when rp carries a nonce.
func (h *Handler) write(w http.ResponseWriter, rp reply, status int, b []byte) {
	h.writeHeader(w, rp, status, b)
	w.Write(b)
}

// writeHeader sends the status and headers of write's answer.
func (h *Handler) writeHeader(w http.ResponseWriter, rp reply, status int, b []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = headerJSON
	hdr["X-Content-Type-Options"] = headerNosniff
	if rp.signed {
		// The signed date travels in Licensing-Date, which proxies pass; Date
		// holds the same text for clients that predate it.
		date := h.svc.cfg.Now().UTC().Format(http.TimeFormat)
		hdr.Set("Date", date)
		hdr.Set(wire.SignedDateHeader, date)
		hdr.Set(signatureHeader, h.svc.cfg.Signing.signAnswer(status, date, b))
	}
	w.WriteHeader(status)
}

// allow applies the per-address rate limit and answers a refused request
// itself (429 with Retry-After, signed when rp carries a nonce).
func (h *Handler) allow(w http.ResponseWriter, r *http.Request, rp reply) bool {
	if h.limiter == nil {
		return true
	}
	wait, ok := h.limiter.allow(clientKey(h.clientAddr(r)))
	if ok {
		return true
	}
	tooMany(w, wait)
	h.observeFailure(rp, http.StatusTooManyRequests)
	h.fail(w, r, reply{signed: rp.nonce != "", nonce: rp.nonce}, errRateLimited)
	return false
}

// tooMany sets Retry-After for a 429: the whole seconds until a token.
func tooMany(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
}
