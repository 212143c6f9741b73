// Package wire is the licensing protocol as both sides speak it: the
// server (package licensing) and the self-hosted client (package client)
// import it, so that a header name, a route, the signed string, the token
// claims, the key checksum or an answer's fields are written once.
//
// It uses only the standard library and holds no state.
//
// # Signed answers
//
// The answers a self-hosted instance relies on (validate, revocations, and
// a refused request that carried a nonce) carry a SignedDateHeader and a
// SignatureHeader. The signature is Ed25519 over [SignedString] of the
// status, the signing key's id, the signed date and the exact body bytes;
// the header value is written by [FormatSignature] and read by
// [ParseSignature]. The signed date travels in SignedDateHeader, which the
// server alone writes, because reverse proxies replace the Date header
// with their own (nginx always does); the server sends the same text in
// Date, so clients written before SignedDateHeader keep verifying answers
// that no proxy re-stamped. [SignedDate] picks the date to verify. The
// request's nonce is echoed in the body, which binds the answer to one
// request.
//
// # What an instance sends
//
// The bounds of a ValidateRequest's fields (MaxMetrics and the others) and
// their rules (CheckInstanceURL, CheckMetricName, ...) are the server's
// input checks; the client applies them before sending, so that it never
// sends what the server refuses.
//
// # License keys
//
// A license key is [KeyLength] lower-case hexadecimal characters: 56 of
// randomness followed by 8 of checksum, the CRC-32 (IEEE) of the first 56
// characters as text (see [KeyChecksum] and [KeyChecksumOK]). The checksum
// catches typing mistakes without a round trip; it is not a secret.
package wire

// Header names.
const (
	// SignatureHeader carries the signature of a signed answer:
	// kid="<key id>", alg="ed25519", sig="<standard base64>" (see
	// FormatSignature).
	SignatureHeader = "Licensing-Signature"
	// SignedDateHeader carries the date that SignatureHeader covers: an
	// HTTP date (IMF-fixdate, "Fri, 20 Feb 2026 10:30:00 GMT"), the same
	// text the server puts in its Date header. Proxies replace Date but
	// pass this header untouched; see SignedDate.
	SignedDateHeader = "Licensing-Date"
	// OrganizationHeader picks the organization of a user who belongs to
	// several, on owner routes.
	OrganizationHeader = "X-Organization"
)

// APIPrefix is the path prefix of every route; the Path constants follow it.
const APIPrefix = "/api/v1/licensing"

// Route paths under APIPrefix. Those with {id} are http.ServeMux wildcard
// patterns whose {id} is a license key's id.
const (
	PathKeys         = "/keys"                // POST creates a key, GET lists the organization's keys
	PathKey          = "/keys/{id}"           // DELETE revokes a key, PATCH changes its expiry or seat limit
	PathKeyInstances = "/keys/{id}/instances" // GET: the instances that hold a seat on a key
	// PathKeyInstance is one instance of a key: DELETE frees its seat.
	// {instance} is the instance's id, path-escaped (an id may be a URL).
	PathKeyInstance   = "/keys/{id}/instances/{instance}"
	PathKeyRotate     = "/keys/{id}/rotate" // POST replaces a key by a new one (the old one overlaps)
	PathKeyToken      = "/keys/{id}/jwt"    // POST issues an offline token for a key
	PathPublicKeys    = "/public-keys"      // GET: the public signing keys as a JWKS
	PathPublicKeysPEM = "/public-keys.pem"  // GET: the public signing keys as PEM blocks
	PathRevocations   = "/revocations"      // GET ?org=<id>&nonce=<n>: the signed RevocationList
	PathValidate      = "/validate"         // POST a ValidateRequest: a signed ValidateAnswer or ErrorAnswer
)

// SeatLimitMessage starts the error text of the validate route's 403 to a
// new instance that finds every seat of its key taken; the limit follows
// in parentheses: "... instances (3)". The client tells this refusal from
// the others by it.
const SeatLimitMessage = "License key is already used by the maximum number of instances"

// PathEvents is the owner's event log: GET ?limit=&cursor=&keyId=&type=
// answers an EventsAnswer, newest first.
const PathEvents = "/events"

// Signature algorithms of offline tokens (the JWT "alg").
const (
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)
