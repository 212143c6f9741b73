package licensing

import (
	"strings"
	"testing"

	"github.com/matryer/is"
)

func TestVerifyKey(t *testing.T) {
	hm, err := newHMACHasher([]byte(strings.Repeat("p", 32)))
	if err != nil {
		t.Fatal(err)
	}
	argon := &Argon2Hasher{Time: 1, Memory: 64}
	key, _ := generateKey(nil)
	other, _ := generateKey(nil)
	lookup := hm.LookupValue(key)
	argonDigest, err := argon.Digest(key)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(s string) string { // the same string with its last character changed
		b := []byte(s)
		b[len(b)-1] ^= 1
		return string(b)
	}
	cases := []struct {
		name   string
		h      Hasher
		key    string
		digest string
		want   bool
	}{
		{"hmac: stored digest is the lookup value", hm, key, lookup, true},
		{"hmac: stored digest differs in its last character", hm, key, flip(lookup), false},
		{"hmac: stored digest of another key", hm, key, hm.LookupValue(other), false},
		{"hmac: empty stored digest", hm, key, "", false},
		{"hmac: stored digest one character short", hm, key, lookup[:len(lookup)-1], false},
		{"argon2: its own digest", argon, key, argonDigest, true},
		{"argon2: the lookup value is not a digest", argon, key, argon.LookupValue(key), false},
		{"argon2: another key with the digest", argon, other, argonDigest, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(verifyKey(tc.h, tc.key, tc.h.LookupValue(tc.key), tc.digest), tc.want)
			is.Equal(tc.h.Verify(tc.key, tc.digest), tc.want) // the same answer as the full check
		})
	}
}

// TestHMACHasherFingerprint: the fingerprint New reads from an HMACHasher
// is PepperFingerprint of its pepper.
func TestHMACHasherFingerprint(t *testing.T) {
	is := is.New(t)
	pepper := []byte(strings.Repeat("p", 40))
	hm, err := newHMACHasher(pepper)
	is.NoErr(err)
	is.Equal(hm.fingerprint(), PepperFingerprint(pepper))
}
