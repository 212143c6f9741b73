package licensing_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

func TestGenerateKeyUniqueParseableAndChecksummed(t *testing.T) {
	is := is.New(t)
	const n = 10_000
	seen := make(map[string]bool, n)
	const hexDigits = "0123456789abcdef"
	for i := 0; i < n; i++ {
		k, err := wire.GenerateKey(nil)
		is.NoErr(err)
		is.Equal(len(k), licensing.KeyLength)
		is.True(!seen[k]) // keys are unique
		seen[k] = true
		got, err := licensing.ParseKey(k)
		is.NoErr(err)
		is.Equal(got, k) // a generated key parses to itself
		b := []byte(k)
		for pos := range b {
			orig := b[pos]
			for _, c := range []byte(hexDigits) {
				if c == orig {
					continue
				}
				b[pos] = c
				if _, err := licensing.ParseKey(string(b)); !errors.Is(err, licensing.ErrKeyChecksum) {
					t.Fatalf("key %d: changing position %d to %q was not caught: %v", i, pos, c, err)
				}
			}
			b[pos] = orig
		}
	}
}

func TestParseKey(t *testing.T) {
	valid, err := wire.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{"canonical", valid, valid, nil},
		{"spaces and newline trimmed", "  " + valid + "\n", valid, nil},
		{"upper case accepted", strings.ToUpper(valid), valid, nil},
		{"empty", "", "", licensing.ErrKeyLength},
		{"too short", valid[:63], "", licensing.ErrKeyLength},
		{"too long", valid + "0", "", licensing.ErrKeyLength},
		{"not hex", "g" + valid[1:], "", licensing.ErrKeyNotHex},
		{"unicode", "é" + valid[2:], "", licensing.ErrKeyNotHex},
		{"checksum", valid[:63] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", valid[63])+1)%16]), "", licensing.ErrKeyChecksum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			got, err := licensing.ParseKey(tc.in)
			is.True(errors.Is(err, tc.wantErr)) // the distinct error for this fault
			is.Equal(got, tc.want)
			if err != nil {
				is.True(!strings.Contains(err.Error(), valid[:56])) // errors never echo the key
			}
		})
	}
}

func TestGenerateKeyFailingRandom(t *testing.T) {
	is := is.New(t)
	_, err := wire.GenerateKey(iotest.ErrReader(errors.New("entropy gone")))
	is.True(err != nil) // a failing source is an error
	_, err = wire.GenerateKey(bytes.NewReader(make([]byte, 10)))
	is.True(errors.Is(err, io.ErrUnexpectedEOF)) // a short source is an error, not a weak key
}

func TestMaskKey(t *testing.T) {
	is := is.New(t)
	k, err := wire.GenerateKey(nil)
	is.NoErr(err)
	is.Equal(wire.MaskKey(k), k[:8]+"..."+k[56:]) // masked key shows 8+8 characters
	is.Equal(wire.MaskKey("short"), "")
}

func ExamplePepperFingerprint() {
	fmt.Println(licensing.PepperFingerprint(bytes.Repeat([]byte{0}, 32))[:16])
	// Output: e6ef15311abbb130
}

// FuzzParseKey: ParseKey accepts exactly the strings that, trimmed and
// lower-cased, pass wire.KeyChecksumOK, and returns that form, which parses
// to itself.
func FuzzParseKey(f *testing.F) {
	body := "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	sum := wire.KeyChecksum([]byte(body))
	good := body + string(sum[:])
	for _, s := range []string{good, strings.ToUpper(good), " \t" + good + "\n", good[:63], good + "0",
		body + "00000000", "\u00a0" + good + "\u2003", strings.Repeat("g", 64), ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := licensing.ParseKey(s)
		want := strings.ToLower(strings.TrimSpace(s))
		if ok := wire.KeyChecksumOK(want); ok != (err == nil) {
			t.Fatalf("ParseKey(%q) error %v, KeyChecksumOK %v", s, err, ok)
		}
		if err != nil {
			if got != "" {
				t.Fatalf("ParseKey(%q) returned %q with error %v", s, got, err)
			}
			if in := strings.TrimSpace(s); len(in) >= 16 && strings.Contains(err.Error(), in) {
				t.Fatalf("the error repeats the input: %v", err)
			}
			return
		}
		if got != want {
			t.Fatalf("ParseKey(%q) = %q, want %q", s, got, want)
		}
		again, err := licensing.ParseKey(strings.ToUpper(got))
		if err != nil || again != got {
			t.Fatalf("round trip of %q: %q, %v", got, again, err)
		}
		if m := wire.MaskKey(got); m != got[:8]+"..."+got[56:] {
			t.Fatalf("MaskKey(%q) = %q", got, m)
		}
	})
}
