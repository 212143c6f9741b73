package client

import (
	"fmt"
	"time"
)

// KeyExpiryWarning is how long before its key's expiry a fresh, valid
// License gets ReasonKeyExpiring: the vendor set an expiry, or rotated the
// key (the old key of a rotation expires at the end of its overlap, at most
// 7 days later by default), and the product's administrator should act.
const KeyExpiryWarning = 14 * 24 * time.Hour

// Reasons of a License about its key's lifetime.
const (
	// ReasonKeyExpiring: the license is valid and fresh, and the key
	// expires within KeyExpiryWarning (License.KeyExpiresAt): the vendor
	// rotated it or it is due for renewal. Tell the administrator to renew
	// the subscription or install the new key before then.
	ReasonKeyExpiring Reason = "key_expiring"
	// ReasonKeyExpired: the server answered 401 "License key has expired"
	// (ErrKeyExpired), with the time in License.KeyExpiresAt. Remembered
	// offline, as a revoked key is.
	ReasonKeyExpired Reason = "key_expired"
)

// ErrKeyExpired: the server refused the key because it is past its expiry
// (License.KeyExpiresAt says when). errors.Is(err, ErrInvalidKey) holds for
// it too: a product that stops on an invalid key stops on an expired one.
var ErrKeyExpired = fmt.Errorf("client: license key has expired; renew it or install the new key (%w)", ErrInvalidKey)

// keyExpiringMessage is the Warn line of a valid license whose key expires
// soon.
const keyExpiringMessage = "licensing client: the license key expires soon; renew the subscription or install the new key the vendor issued"

// keyExpiryReason returns ReasonKeyExpiring for a valid, fresh License
// whose key expires within KeyExpiryWarning of now (the server's time as
// the client reckons it, so a local clock that runs behind does not hide
// the warning), else reason.
func keyExpiryReason(lic License, reason Reason, now time.Time) Reason {
	if reason == ReasonValid && lic.Valid && !lic.KeyExpiresAt.IsZero() && lic.KeyExpiresAt.Sub(now) < KeyExpiryWarning {
		return ReasonKeyExpiring
	}
	return reason
}
