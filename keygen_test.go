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
)

func TestGenerateKeyUniqueParseableAndChecksummed(t *testing.T) {
	is := is.New(t)
	const n = 10_000
	seen := make(map[string]bool, n)
	const hexDigits = "0123456789abcdef"
	for i := 0; i < n; i++ {
		k, err := licensing.GenerateKey(nil)
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
	valid, err := licensing.GenerateKey(nil)
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
	_, err := licensing.GenerateKey(iotest.ErrReader(errors.New("entropy gone")))
	is.True(err != nil) // a failing source is an error
	_, err = licensing.GenerateKey(bytes.NewReader(make([]byte, 10)))
	is.True(errors.Is(err, io.ErrUnexpectedEOF)) // a short source is an error, not a weak key
}

func TestMaskKey(t *testing.T) {
	is := is.New(t)
	k, err := licensing.GenerateKey(nil)
	is.NoErr(err)
	is.Equal(licensing.MaskKey(k), k[:8]+"..."+k[56:]) // masked key shows 8+8 characters
	is.Equal(licensing.MaskKey("short"), "")
}

func TestHMACHasher(t *testing.T) {
	is := is.New(t)
	_, err := licensing.NewHMACHasher(nil)
	is.True(errors.Is(err, licensing.ErrShortPepper)) // missing pepper
	_, err = licensing.NewHMACHasher(make([]byte, 31))
	is.True(errors.Is(err, licensing.ErrShortPepper)) // short pepper
	h, err := licensing.NewHMACHasher(bytes.Repeat([]byte{7}, 32))
	is.NoErr(err)
	other, err := licensing.NewHMACHasher(bytes.Repeat([]byte{8}, 32))
	is.NoErr(err)
	k, _ := licensing.GenerateKey(nil)
	k2, _ := licensing.GenerateKey(nil)
	d, err := h.Digest(k)
	is.NoErr(err)
	is.Equal(d, h.LookupValue(k)) // the digest is the lookup value
	is.True(!strings.Contains(d, k[:8]))
	is.True(h.Verify(k, d))
	is.True(!h.Verify(k2, d))     // another key
	is.True(!other.Verify(k, d))  // another pepper
	is.True(!h.Verify(k, d[:10])) // truncated digest
	is.True(h.LookupValue(k) != other.LookupValue(k))
}

func TestArgon2Hasher(t *testing.T) {
	is := is.New(t)
	h := &licensing.Argon2Hasher{Time: 1, Memory: 64}
	k, _ := licensing.GenerateKey(nil)
	k2, _ := licensing.GenerateKey(nil)
	d, err := h.Digest(k)
	is.NoErr(err)
	is.True(strings.HasPrefix(d, "$argon2id$v=19$m=64,t=1,p=1$")) // PHC string with parameters
	is.Equal(h.LookupValue(k), k[:8])                             // lookup is the non-secret prefix
	is.True(h.Verify(k, d))
	is.True(!h.Verify(k2, d))
	d2, err := h.Digest(k)
	is.NoErr(err)
	is.True(d != d2) // fresh salt each time
	for _, bad := range []string{"", "$argon2i$v=19$m=64,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA", d[:len(d)-4]} {
		is.True(!h.Verify(k, bad)) // malformed or absurd digests fail
	}
	// A digest may not ask for more work than the hasher's own parameters or
	// 256 MiB, 32 iterations and 16 threads: a hostile store cannot make a
	// validation cost gigabytes; below that, earlier higher settings work.
	earlier := &licensing.Argon2Hasher{Time: 12, Memory: 64}
	de, err := earlier.Digest(k)
	is.NoErr(err)
	is.True(h.Verify(k, de)) // settings lowered since: the key still validates
	strong := &licensing.Argon2Hasher{Time: 40, Memory: 64}
	ds, err := strong.Digest(k)
	is.NoErr(err)
	is.True(strong.Verify(k, ds)) // its own digests
	is.True(!h.Verify(k, ds))     // 40 iterations: more than h does or 32
	salt, sum := "AAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("A", 43)
	for _, costly := range []string{"m=262145,t=1,p=1", "m=64,t=33,p=1", "m=64,t=1,p=17", "m=4194304,t=64,p=255"} {
		is.True(!h.Verify(k, "$argon2id$v=19$"+costly+"$"+salt+"$"+sum)) // refused, not computed
	}
	def := &licensing.Argon2Hasher{}
	d, err = def.Digest(k)
	is.NoErr(err)
	is.True(strings.HasPrefix(d, "$argon2id$v=19$m=19456,t=2,p=1$")) // OWASP minimum by default
}

func TestPepperFingerprint(t *testing.T) {
	is := is.New(t)
	p := bytes.Repeat([]byte{7}, 32)
	fp := licensing.PepperFingerprint(p)
	is.Equal(len(fp), 64)                                                // hex SHA-256
	is.Equal(fp, licensing.PepperFingerprint(append([]byte(nil), p...))) // stable
	q := bytes.Repeat([]byte{7}, 32)
	q[31] = 8
	is.True(fp != licensing.PepperFingerprint(q)) // one byte changes it
	h, err := licensing.NewHMACHasher(p)
	is.NoErr(err)
	is.True(fp != h.LookupValue(""))                   // not the lookup value of any key
	is.True(!strings.Contains(fp, "0707070707070707")) // the pepper does not show
}

func ExamplePepperFingerprint() {
	fmt.Println(licensing.PepperFingerprint(bytes.Repeat([]byte{0}, 32))[:16])
	// Output: e6ef15311abbb130
}
