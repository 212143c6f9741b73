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
// a refused request that carried a nonce) carry a Date header and a
// SignatureHeader. The signature is Ed25519 over [SignedString] of the
// status, the signing key's id, the Date header and the exact body bytes;
// the header value is written by [FormatSignature] and read by
// [ParseSignature]. The request's nonce is echoed in the body, which binds
// the answer to one request.
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
	// OrganizationHeader picks the organization of a user who belongs to
	// several, on owner routes.
	OrganizationHeader = "X-Organization"
)

// APIPrefix is the path prefix of every route; the Path constants follow it.
const APIPrefix = "/api/v1/licensing"

// Route paths under APIPrefix. Those with {id} are http.ServeMux wildcard
// patterns whose {id} is a license key's id.
const (
	PathKeys          = "/keys"            // POST creates a key, GET lists the organization's keys
	PathKey           = "/keys/{id}"       // DELETE revokes a key
	PathKeyToken      = "/keys/{id}/jwt"   // POST issues an offline token for a key
	PathPublicKeys    = "/public-keys"     // GET: the public signing keys as a JWKS
	PathPublicKeysPEM = "/public-keys.pem" // GET: the public signing keys as PEM blocks
	PathRevocations   = "/revocations"     // GET ?org=<id>&nonce=<n>: the signed RevocationList
	PathValidate      = "/validate"        // POST a ValidateRequest: a signed ValidateAnswer or ErrorAnswer
)

// Signature algorithms of offline tokens (the JWT "alg").
const (
	AlgEdDSA = "EdDSA"
	AlgRS256 = "RS256"
)
