package licensing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
)

// MinPepperLength is the shortest pepper NewHMACHasher accepts, in bytes.
const MinPepperLength = 32

// errShortPepper is returned when a pepper is missing or shorter than MinPepperLength.
var errShortPepper = &Error{Code: CodeInvalid, Message: "pepper must be at least 32 bytes"}

// pepperFingerprintLabel is the fixed message PepperFingerprint signs.
const pepperFingerprintLabel = "licensing pepper fingerprint v1"

// PepperFingerprint returns a fingerprint of pepper that a store can keep to
// recognize the pepper it was created with: the hex HMAC-SHA-256 of a fixed
// label under the pepper. It reveals nothing about the pepper and cannot be
// used to check a guessed license key. Equal peppers give equal fingerprints.
func PepperFingerprint(pepper []byte) string {
	m := hmac.New(sha256.New, pepper)
	io.WriteString(m, pepperFingerprintLabel)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrPepperMismatch is wrapped by the error of a store that remembers the
// fingerprint of the pepper it was created with (see PepperFingerprint) and
// is opened under another one.
var ErrPepperMismatch = &Error{Code: CodeInternal, Message: "the store was created with another pepper; with this one every issued key would stop validating"}
