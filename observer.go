package licensing

import (
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
// Outcome values), so they are safe to use as metric labels.
type Observer interface {
	// Request is called once per request the Handler answers, after the
	// answer is written: route is the pattern that matched, such as
	// "POST /validate" or "DELETE /keys/{id}" (without APIPrefix; a path
	// known under other methods gives the bare path, as "/keys", and a path
	// of no route gives "unmatched"), status the HTTP status sent, d the
	// time the handler took.
	Request(route string, status int, d time.Duration)
	// Validation is called once per validation with its outcome.
	Validation(outcome Outcome)
}

// routeUnmatched is the route Observer.Request receives for a path that
// matches no route (answered 404).
const routeUnmatched = "unmatched"

// Outcome is what became of one validation: what Observer.Validation
// receives, and the cause an EventValidationFailed carries. Every request
// to the validate route has exactly one outcome when it is served by a
// Handler; ValidateKey called directly has those of the Service (all but
// OutcomeRateLimited, OutcomeInvalidInput and OutcomeError). The values
// are short lower-case words, safe as metric labels.
type Outcome string

// Outcomes of a validation.
const (
	OutcomeValid        Outcome = "valid"         // the key is valid (200)
	OutcomeMalformed    Outcome = "malformed"     // not a well-formed key with a valid checksum (401)
	OutcomeUnknown      Outcome = "unknown"       // no such key (401)
	OutcomeRevoked      Outcome = "revoked"       // the key was revoked (401)
	OutcomeExpired      Outcome = "expired"       // the real key, past its expiry (401)
	OutcomeInactive     Outcome = "inactive"      // the key's organization is inactive or no longer known (401/403)
	OutcomeNotEligible  Outcome = "not_eligible"  // the plan lacks the required feature (403)
	OutcomeSeatLimit    Outcome = "seat_limit"    // a new instance found every seat of the key taken (403)
	OutcomeRateLimited  Outcome = "rate_limited"  // refused by the rate limiter (429)
	OutcomeInvalidInput Outcome = "invalid_input" // a bad request: body, fields, nonce (400, 413, 415)
	OutcomeError        Outcome = "error"         // the server failed (5xx)
)

// observeEvent reports the validation outcome an event stands for.
func (s *Service) observeEvent(e *Event) {
	switch e.Type {
	case EventKeyValidated:
		s.cfg.Observer.Validation(OutcomeValid)
	case EventValidationFailed:
		s.cfg.Observer.Validation(e.Outcome)
	}
}
