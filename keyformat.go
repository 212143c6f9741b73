package licensing

import (
	"io"
	"strings"

	"github.com/licensekit/licensing/internal/wire"
)

// keyLength is the length of a license key: 56 hex characters of randomness
// followed by 8 hex characters of checksum.
const keyLength = wire.KeyLength

const (
	keyBodyLength = wire.KeyBodyLength
	maskedEdge    = 8
)

// Errors returned by ParseKey. They never contain the key.
var (
	errKeyLength   = &Error{Code: CodeInvalid, Message: "license key must be 64 characters long"}
	errKeyNotHex   = &Error{Code: CodeInvalid, Message: "license key must contain only hexadecimal characters"}
	errKeyChecksum = &Error{Code: CodeInvalid, Message: "license key checksum does not match (mistyped key?)"}
)

// generateKey returns a new license key read from random (crypto/rand.Reader
// when nil); a failing source is an error, never a weak key.
func generateKey(random io.Reader) (string, error) {
	key, err := wire.GenerateKey(random)
	if err != nil {
		return "", &Error{Code: CodeInternal, Message: "Could not generate a key.", Err: err}
	}
	return key, nil
}

// dummyKey is hashed once by New; validations of unknown keys compare
// against its digest so that a miss costs what a hit does.
const dummyKey = "0000000000000000000000000000000000000000000000000000000000000000"

// parseKey returns s in canonical form and whether its checksum holds. It
// fails only for a length or a character that no key can have.
func parseKey(s string) (key string, checksumOK bool, err error) {
	key, err = ParseKey(s)
	if err == errKeyChecksum {
		return strings.ToLower(strings.TrimSpace(s)), false, nil
	}
	return key, err == nil, err
}

// ParseKey checks a license key as typed or pasted by a person and returns it
// in canonical form (lower case). Surrounding white space is removed and upper
// case is accepted. A wrong length, a character that is not hexadecimal and
// a checksum that does not match each give an *Error of code CodeInvalid
// whose message says which (never the key), so a mistyped or invented key
// is rejected without any store access.
func ParseKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) != keyLength {
		return "", errKeyLength
	}
	var buf [keyLength]byte
	lower := true
	for i := 0; i < keyLength; i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
			lower = false
		default:
			return "", errKeyNotHex
		}
		buf[i] = c
	}
	if sum := wire.KeyChecksum(buf[:keyBodyLength]); string(sum[:]) != string(buf[keyBodyLength:]) {
		return "", errKeyChecksum
	}
	if lower {
		return s, nil // already canonical: no copy
	}
	return string(buf[:]), nil
}
