package licensing

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// MinPepperLength is the shortest Config.Pepper that New accepts, in bytes.
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

// pepperChecker is implemented by a Store that remembers the fingerprint
// (PepperFingerprint) of the pepper its keys were issued under, as the file
// store and the PostgreSQL store do. New calls CheckPepper with the
// fingerprint of Config.Pepper: a store that records none yet records it
// (or, holding no key, may adopt it); a store that records another one
// returns an error wrapping ErrPepperMismatch, and New refuses to start.
// New waits at most 30 seconds for the answer, then fails naming the store
// as unreachable, whether or not CheckPepper honours its context.
type pepperChecker interface {
	CheckPepper(ctx context.Context, fingerprint string) error
}

// pepperCheckTimeout bounds New's call to CheckPepper (a variable for
// tests).
var pepperCheckTimeout = 30 * time.Second

// checkStorePepper has a store that can tell confirm that fingerprint is
// its pepper's (see pepperChecker); any other store passes.
func checkStorePepper(store Store, fingerprint string) error {
	pc, ok := store.(pepperChecker)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pepperCheckTimeout)
	defer cancel()
	// A store that ignores ctx is not waited on past it: New fails, never
	// hangs. Its call is left to finish on its own.
	done := make(chan error, 1)
	go func() { done <- pc.CheckPepper(ctx, fingerprint) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return wrapErr(fmt.Sprintf("the store did not answer the pepper check within %v; check that the store is reachable (its database up, its directory not on a hung mount)", pepperCheckTimeout), err)
	}
	if errors.Is(err, ErrPepperMismatch) {
		return wrapErr("Config.Pepper is not the pepper the store's keys were issued under; use that pepper (restore its file from a backup)", err)
	}
	if err != nil {
		return wrapErr("check Config.Pepper with the store", err)
	}
	return nil
}
