package wire

import (
	"crypto/rand"
	"encoding/hex"
	"hash/crc32"
	"io"
)

// Lengths of a license key, in characters.
const (
	KeyLength         = 64 // the whole key
	KeyBodyLength     = 56 // the random part: 28 bytes in hexadecimal
	KeyChecksumLength = 8  // the checksum: KeyChecksum of the body
)

// KeyChecksum returns the checksum that follows a key's body: the CRC-32
// (IEEE) of body, the KeyBodyLength lower-case hexadecimal characters of
// the key as text, written as 8 lower-case hexadecimal characters, most
// significant first.
func KeyChecksum(body []byte) [KeyChecksumLength]byte {
	sum := crc32.ChecksumIEEE(body)
	var out [KeyChecksumLength]byte
	hex.Encode(out[:], []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	return out
}

// KeyChecksumOK reports whether key has the license key format: exactly
// KeyLength lower-case hexadecimal characters whose last KeyChecksumLength
// are the KeyChecksum of the first KeyBodyLength. It does not trim or
// lower-case key; callers that accept typed keys do that first. A true
// answer says only that the key was not mistyped, not that it exists.
func KeyChecksumOK(key string) bool {
	if len(key) != KeyLength {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	sum := KeyChecksum([]byte(key[:KeyBodyLength]))
	return string(sum[:]) == key[KeyBodyLength:]
}

// GenerateKey returns a new license key read from random (crypto/rand.Reader
// when nil). A random source that fails or returns short is an error: a weak
// key is never returned.
func GenerateKey(random io.Reader) (string, error) {
	if random == nil {
		random = rand.Reader
	}
	var raw [KeyBodyLength / 2]byte
	if _, err := io.ReadFull(random, raw[:]); err != nil {
		return "", err
	}
	var buf [KeyLength]byte
	hex.Encode(buf[:KeyBodyLength], raw[:])
	sum := KeyChecksum(buf[:KeyBodyLength])
	copy(buf[KeyBodyLength:], sum[:])
	return string(buf[:]), nil
}

// maskedEdge is how many characters of a key MaskKey shows at each end.
const maskedEdge = 8

// MaskKey returns the form of a key that may be shown after creation: its
// first 8 characters, "...", and its last 8 characters. It returns "" for a
// string that is not KeyLength long.
func MaskKey(key string) string {
	if len(key) != KeyLength {
		return ""
	}
	return key[:maskedEdge] + "..." + key[KeyLength-maskedEdge:]
}
