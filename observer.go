package licensing

import (
	"net/http"
	"sync"
	"time"
)

// Observer receives the figures an operator watches, so that an embedder can
// feed the metrics system of their choice (the reference server writes them
// in the Prometheus text format on /metrics). Set it in Config.Observer; the
// Service reports validation outcomes to it and a Handler built on that
// Service reports requests and the validation outcomes only the transport
// sees. A nil Observer costs nothing.
//
// Methods are called synchronously, from many goroutines at once, on the
// request's path: they must be safe for concurrent use, quick and
// non-blocking (an atomic add), and must not call back into the Service.
// The strings passed are drawn from a small fixed set (route patterns,
// Outcome constants), so they are safe to use as metric labels.
type Observer interface {
	// Request is called once per request the Handler answers, after the
	// answer is written: route is the pattern that matched, such as
	// "POST /validate" or "DELETE /keys/{id}" (without APIPrefix; a path
	// known under other methods gives the bare path, as "/keys", and a path
	// of no route gives RouteUnmatched), status the HTTP status sent, d the
	// time the handler took.
	Request(route string, status int, d time.Duration)
	// Validation is called once per validation with its outcome, one of
	// the Outcome constants.
	Validation(outcome string)
}

// RouteUnmatched is the route Observer.Request receives for a path that
// matches no route (answered 404).
const RouteUnmatched = "unmatched"

// Outcomes of a validation, as Observer.Validation receives them. Every
// request to the validate route has exactly one outcome when it is served
// by a Handler; ValidateKey called directly reports those of the Service
// (all but OutcomeRateLimited, OutcomeInvalidInput and OutcomeError).
const (
	OutcomeValid        = "valid"         // the key is valid (200)
	OutcomeMalformed    = "malformed"     // not a well-formed key with a valid checksum (401)
	OutcomeUnknown      = "unknown"       // no such key (401)
	OutcomeRevoked      = "revoked"       // the key was revoked (401)
	OutcomeInactive     = "inactive"      // the key's organization is inactive or no longer known (401/403)
	OutcomeNotEligible  = "not_eligible"  // the plan lacks the required feature (403)
	OutcomeRateLimited  = "rate_limited"  // refused by the rate limiter (429)
	OutcomeInvalidInput = "invalid_input" // a bad request: body, fields, nonce (400, 413, 415)
	OutcomeError        = "error"         // the server failed (5xx)
)

// outcomeOf maps an EventValidationFailed reason to its outcome.
func outcomeOf(reason string) string {
	switch reason {
	case ReasonMalformed:
		return OutcomeMalformed
	case ReasonUnknown:
		return OutcomeUnknown
	case ReasonRevoked:
		return OutcomeRevoked
	case ReasonPlanNotEligible:
		return OutcomeNotEligible
	default: // ReasonOrgInactive, ReasonOrgNotFound
		return OutcomeInactive
	}
}

// observeEvent reports the validation outcome an event stands for.
func (s *Service) observeEvent(e *Event) {
	switch e.Type {
	case EventKeyValidated:
		s.cfg.Observer.Validation(OutcomeValid)
	case EventValidationFailed:
		s.cfg.Observer.Validation(outcomeOf(e.Reason))
	}
}

// observeFailure reports the outcome of a validate request answered with
// status by the transport: 401 and 403 were reported by the Service.
func (h *Handler) observeFailure(rp reply, status int) {
	if h.obs == nil || !rp.validate {
		return
	}
	switch {
	case status == http.StatusTooManyRequests:
		h.obs.Validation(OutcomeRateLimited)
	case status >= 500:
		h.obs.Validation(OutcomeError)
	case status != http.StatusUnauthorized && status != http.StatusForbidden:
		h.obs.Validation(OutcomeInvalidInput)
	}
}

// statusRecorder remembers the status a handler sends. Recorders are pooled
// so that observing a request allocates nothing.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observed wraps serve so that each request is reported to the Observer
// under route; without an Observer it returns serve itself.
func (h *Handler) observed(route string, serve http.HandlerFunc) http.HandlerFunc {
	if h.obs == nil {
		return serve
	}
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := recorders.Get().(*statusRecorder)
		sw.ResponseWriter, sw.status = w, 0
		serve(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		sw.ResponseWriter = nil
		recorders.Put(sw)
		h.obs.Request(route, status, time.Since(start))
	}
}
