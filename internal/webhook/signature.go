package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names.
const (
	IDHeader        = "webhook-id"        // the event's id: the same on every attempt
	TimestampHeader = "webhook-timestamp" // Unix seconds of the attempt
	SignatureHeader = "webhook-signature" // "v1,<base64 HMAC-SHA256>"
)

// SecretPrefix starts every endpoint secret: "whsec_" followed by the
// standard base64 of the key.
const SecretPrefix = "whsec_"

// Bounds of an endpoint secret's key, in bytes (before base64).
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// ParseSecret decodes a "whsec_<base64>" secret into its HMAC key. The
// key must be MinSecretBytes to MaxSecretBytes long. Its errors never
// hold the secret.
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, errors.New(`must start with "whsec_" followed by the base64 of 24 to 64 random bytes (make one: printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)")`)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, errors.New(`the part after "whsec_" is not standard base64 (make one: printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)")`)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("the key is %d bytes: it must be %d to %d bytes before base64 (make one: printf 'whsec_%%s\\n' \"$(head -c 32 /dev/urandom | base64)\")", len(key), MinSecretBytes, MaxSecretBytes)
	}
	return key, nil
}

// Sign returns the webhook-signature header value of a delivery:
// "v1," and the standard base64 of HMAC-SHA256(key, id "." timestamp "."
// body), timestamp in Unix seconds, per the Standard Webhooks
// specification.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
