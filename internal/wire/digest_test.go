package wire

import (
	"errors"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestSHA256Digests: a SHA-256 labelled "sha256:" or "sha256=" (an image
// digest, a checksum) is not a key; an unlabelled one cannot be told from a
// seed-system key and is refused, as HoldsKey documents.
func TestSHA256Digests(t *testing.T) {
	const digest = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // sha256("")
	tests := []struct {
		name    string
		check   func(string) error
		value   string
		refused bool
	}{
		{"image digest as the instance name", CheckInstanceName, "storno@sha256:" + digest, false},
		{"upper-case label", CheckInstanceName, "storno@SHA256:" + digest, false},
		{"checksum", CheckInstanceName, "build sha256=" + digest, false},
		{"registry URL of the image", CheckInstanceURL, "https://registry.example.com/v2/storno/manifests/sha256:" + digest, false},
		{"unlabelled, in a build URL", CheckInstanceURL, "https://ci.example.com/artifacts/" + digest, true},
		{"a label not right before the run", CheckInstanceName, "sha256: " + digest, true},
		{"other label", CheckInstanceName, "sha512:" + digest, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			err := tc.check(tc.value)
			is.Equal(errors.Is(err, ErrHoldsKey), tc.refused)
		})
	}
}

// TestHoldsKeyOrdinaryValues: identifiers shorter than a key, and odd
// inputs, are not keys.
func TestHoldsKeyOrdinaryValues(t *testing.T) {
	for _, s := range []string{
		"550e8400-e29b-41d4-a716-446655440000",     // UUID
		"550e8400e29b41d4a716446655440000",         // dashless UUID
		"da39a3ee5e6b4b0d3255bfef95601890afd80709", // SHA-1 commit id
		"https://git.example.com/commit/da39a3ee5e6b4b0d3255bfef95601890afd80709",
		"aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZW5jb2RlZCB0ZXh0IGZvciB0ZXN0cw==",
		"\xff\xfe" + strings.Repeat("\xc0", 100), // invalid UTF-8
		strings.Repeat("%", 10000) + strings.Repeat("%2", 10000),
	} {
		t.Run(s[:min(len(s), 20)], func(t *testing.T) {
			is := is.New(t)
			is.True(!HoldsKey(s))
		})
	}
}
