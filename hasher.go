package licensing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// A Hasher turns a license key into what the store keeps instead of it.
//
// The Service looks a presented key up by its LookupValue (which stores index
// and keep unique) and then calls Verify on the candidate's Digest; with the
// hmacHasher, whose digest is its lookup value, it compares the two in
// constant time instead of hashing the key again. Every method must be safe
// for concurrent use.
type Hasher interface {
	// LookupValue returns the value a key is indexed by. It must be a pure
	// function of the key.
	LookupValue(key string) string
	// Digest returns the value stored to verify the key later.
	Digest(key string) (string, error)
	// Verify reports whether key matches digest, in time that does not
	// depend on how much of them match.
	Verify(key, digest string) bool
}

// hmacHasher is the default Hasher: the digest and the lookup value are both
// the hex HMAC-SHA-256 of the key under a server secret (the pepper). Without
// the pepper a stolen store reveals nothing that can be checked offline.
type hmacHasher struct {
	pool sync.Pool // of *hmacState
}

// hmacState is a hash keyed with the pepper and room for a key, so hashing
// allocates nothing.
type hmacState struct {
	h   hash.Hash
	buf [keyLength]byte
}

// newHMACHasher returns an hmacHasher keyed with pepper, which must be at
// least MinPepperLength bytes. The pepper is copied.
func newHMACHasher(pepper []byte) (*hmacHasher, error) {
	if len(pepper) < MinPepperLength {
		return nil, errShortPepper
	}
	p := append([]byte(nil), pepper...)
	h := &hmacHasher{}
	h.pool.New = func() any { return &hmacState{h: hmac.New(sha256.New, p)} }
	return h, nil
}

// fingerprint returns PepperFingerprint of the hasher's pepper: the HMAC
// of the fingerprint's label under it.
func (h *hmacHasher) fingerprint() string {
	return h.LookupValue(pepperFingerprintLabel)
}

func (h *hmacHasher) sum(key string, dst *[sha256.Size]byte) {
	st := h.pool.Get().(*hmacState)
	st.h.Reset()
	if len(key) <= len(st.buf) {
		st.h.Write(st.buf[:copy(st.buf[:], key)])
	} else {
		io.WriteString(st.h, key)
	}
	st.h.Sum(dst[:0])
	h.pool.Put(st)
}

// LookupValue returns the hex HMAC-SHA-256 of key.
func (h *hmacHasher) LookupValue(key string) string {
	var sum [sha256.Size]byte
	h.sum(key, &sum)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// Digest returns the hex HMAC-SHA-256 of key; it never fails.
func (h *hmacHasher) Digest(key string) (string, error) { return h.LookupValue(key), nil }

// digestIsLookup marks a Hasher whose Digest is its LookupValue, so a
// validation computes one hash and compares it with the stored digest (see
// verifyKey).
func (h *hmacHasher) digestIsLookup() {}

// verifyKey reports whether key, whose LookupValue is lookup, matches
// digest. When the hasher's digest is its lookup value (hmacHasher) that is
// a constant-time comparison of the two, with no second hash; any other
// Hasher verifies as it likes.
func verifyKey(h Hasher, key, lookup, digest string) bool {
	if _, ok := h.(interface{ digestIsLookup() }); ok {
		return constantTimeEqual(lookup, digest)
	}
	return h.Verify(key, digest)
}

// constantTimeEqual compares a and b in time that depends only on their
// lengths.
func constantTimeEqual[T string | []byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// Verify compares the HMAC of key with digest in constant time.
func (h *hmacHasher) Verify(key, digest string) bool {
	var want [sha256.Size]byte
	if len(digest) != 2*sha256.Size {
		return false
	}
	if _, err := hex.Decode(want[:], []byte(digest)); err != nil {
		return false
	}
	var got [sha256.Size]byte
	h.sum(key, &got)
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// Argon2Hasher stores an Argon2id hash of each key as a PHC string. Its lookup
// value is the key's first 8 characters, which the masked key shows anyway;
// the Service regenerates a key whose prefix is already taken, so lookup
// values stay unique.
//
// Use it when the store must resist offline guessing even if the server's
// secrets leak with it; every validation then costs one Argon2id hash.
type Argon2Hasher struct {
	Time    uint32 // iterations; default 2
	Memory  uint32 // KiB; default 19456 (19 MiB)
	Threads uint8  // default 1
	Random  io.Reader
}

const argonSaltLen, argonHashLen = 16, 32

// The most work a stored digest may ask of Verify unless the hasher itself
// is set higher: 256 MiB, 32 iterations, 16 threads.
const argonMaxMemory, argonMaxTime, argonMaxThreads = 256 << 10, 32, 16

func (a *Argon2Hasher) params() (t, m uint32, p uint8) {
	t, m, p = a.Time, a.Memory, a.Threads
	if t == 0 {
		t = 2 // OWASP minimum with 19 MiB
	}
	if m == 0 {
		m = 19 * 1024
	}
	if p == 0 {
		p = 1
	}
	return t, m, p
}

// LookupValue returns the first 8 characters of key.
func (a *Argon2Hasher) LookupValue(key string) string {
	if len(key) < maskedEdge {
		return key
	}
	return key[:maskedEdge]
}

// Digest returns an Argon2id PHC string for key with a fresh random salt.
func (a *Argon2Hasher) Digest(key string) (string, error) {
	t, m, p := a.params()
	random := a.Random
	if random == nil {
		random = rand.Reader
	}
	salt := make([]byte, argonSaltLen)
	if _, err := io.ReadFull(random, salt); err != nil {
		return "", &Error{Code: CodeInternal, Message: "Could not make an Argon2 salt.", Err: err}
	}
	sum := argon2.IDKey([]byte(key), salt, t, m, p, argonHashLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p,
		b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// Verify recomputes the Argon2id hash of key with the parameters and salt in
// digest and compares in constant time. A digest that asks for more memory,
// iterations or threads than the hasher's own parameters or 256 MiB, 32 and
// 16, whichever is more, is rejected rather than computed; below that, keys
// made under earlier, higher settings keep validating.
func (a *Argon2Hasher) Verify(key, digest string) bool {
	parts := strings.Split(digest, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m, t uint32
	var p uint8
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); n != 3 || err != nil {
		return false
	}
	// A digest may not ask for more work than this hasher is configured to
	// do or than any sane setting (so lowering the settings keeps earlier
	// keys): a hostile store or backup must not make one validation take
	// gigabytes.
	ot, om, op := a.params()
	if m == 0 || m > max(om, argonMaxMemory) || t == 0 || t > max(ot, argonMaxTime) || p == 0 || p > max(op, argonMaxThreads) {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) != argonHashLen {
		return false
	}
	got := argon2.IDKey([]byte(key), salt, t, m, p, argonHashLen)
	return subtle.ConstantTimeCompare(got, want) == 1
}
