package licensing

import (
	"errors"
	"fmt"
)

// Code classifies an Error. The Handler maps each code to one HTTP status
// (httperr.go); the domain itself knows no status codes.
type Code string

// Error codes.
const (
	CodeInvalid         Code = "invalid"           // 400: bad input
	CodeUnauthorized    Code = "unauthorized"      // 401: missing or unknown credentials
	CodeInvalidLicense  Code = "invalid_license"   // 401 from validate: unknown, malformed or revoked key
	CodeForbidden       Code = "forbidden"         // 403: not allowed for this actor
	CodePlanNotEligible Code = "plan_not_eligible" // 403: plan lacks the required feature
	CodeNotFound        Code = "not_found"         // 404
	CodeConflict        Code = "conflict"          // 409: duplicate id or lookup value
	CodeRateLimited     Code = "rate_limited"      // 429
	CodeInternal        Code = "internal"          // 500
	CodeUnavailable     Code = "unavailable"       // 503: the store refuses writes or cannot be reached
	CodeNotImplemented  Code = "not_implemented"   // 501: the store lacks a capability the call needs
)

// Error is the one error type of this package: every error the package
// returns is an *Error or wraps one, so ErrorCode classifies any of them. Message is safe to show to
// the caller of the HTTP API; Err, when set, is the cause and is only logged.
// No Error ever holds a full license key or a token.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "licensing: " + e.Message + ": " + e.Err.Error()
	}
	return "licensing: " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// errorMessage returns the caller-safe message of err: the Message of its
// *Error, or a generic sentence for any other error.
func errorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// Errors the Service and stores return. Compare with errors.Is.
var (
	ErrUnauthorized       = &Error{Code: CodeUnauthorized, Message: "Missing or invalid token."}
	ErrOrgNotFound        = &Error{Code: CodeNotFound, Message: "Organization not found"}
	ErrNotOwner           = &Error{Code: CodeForbidden, Message: "Permission denied"}
	ErrOrgInactive        = &Error{Code: CodeForbidden, Message: "Organization is inactive"}
	ErrKeyNotFound        = &Error{Code: CodeNotFound, Message: "License key not found"}
	ErrDuplicateKey       = &Error{Code: CodeConflict, Message: "A license key with this id or lookup value exists."}
	errLicenseKeyRequired = &Error{Code: CodeInvalid, Message: "licenseKey is required"}
	// ErrInvalidLicense is the one answer for a key that is unknown,
	// malformed, mistyped or revoked, so callers cannot tell them apart.
	ErrInvalidLicense = &Error{Code: CodeInvalidLicense, Message: "Invalid or revoked license key"}
	errRateLimited    = &Error{Code: CodeRateLimited, Message: "Too many requests."}
	// ErrStoreFailed is returned by a store that hit a write or fsync error
	// and now refuses writes; reads keep working.
	ErrStoreFailed = &Error{Code: CodeUnavailable, Message: "The license store is unavailable for writes."}
	// ErrStoreUnavailable is returned by a store that cannot reach its
	// database (a connection refused, lost or timed out): neither reads nor
	// writes are answered until it is back. Nothing is changed by the call
	// that gets it, except as the Store contract says of a connection lost
	// while committing.
	ErrStoreUnavailable = &Error{Code: CodeUnavailable, Message: "The license store is unavailable; retry shortly."}
)

// ErrInvalidKeyID is returned by MemoryStore for a Key.ID that is not a
// canonical lower-case UUID.
var ErrInvalidKeyID = &Error{Code: CodeInvalid, Message: "key id must be a lower-case UUID"}

// ErrInvalidExpiry is returned by stores for an expiry outside the range
// they keep (see ValidExpiry); they store nothing then.
var ErrInvalidExpiry = &Error{Code: CodeInvalid, Message: "expiresAt must be after 1970-01-01 and before 2262-04-11 (UTC)"}

// errCrossOrigin answers a browser request from another origin that relies
// on cookies rather than an Authorization header (see
// HandlerConfig.TrustedOrigins).
var errCrossOrigin = &Error{Code: CodeForbidden, Message: "Cross-origin request refused; send an Authorization header or use a trusted origin."}

// ErrKeyRevoked is returned when a token is asked for, an expiry set, or a
// rotation asked for a revoked key.
var ErrKeyRevoked = &Error{Code: CodeForbidden, Message: "License key is revoked"}

// ErrKeyRotated is returned when a key that was already rotated is rotated
// again.
var ErrKeyRotated = &Error{Code: CodeConflict, Message: "License key was already rotated"}

// ErrKeyExpired is returned by validation of a key past its ExpiresAt. It is
// told only to a holder of the real key: unknown, malformed and revoked keys
// keep ErrInvalidLicense.
var ErrKeyExpired = &Error{Code: CodeInvalidLicense, Message: "License key has expired"}

// wrapErr adds what was being done to err. An err that carries an *Error
// keeps its code; any other cause becomes an internal *Error, so that every
// error the package returns is classified.
func wrapErr(doing string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return fmt.Errorf("licensing: %s: %w", doing, err)
	}
	return &Error{Code: CodeInternal, Message: "Internal error.", Err: fmt.Errorf("%s: %w", doing, err)}
}

// configError is the error of a Config or HandlerConfig that cannot work.
func configError(msg string) error {
	return &Error{Code: CodeInvalid, Message: msg}
}
