package licensing_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

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
	k, _ := wire.GenerateKey(nil)
	k2, _ := wire.GenerateKey(nil)
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
	k, _ := wire.GenerateKey(nil)
	k2, _ := wire.GenerateKey(nil)
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

func TestArgon2ServiceRoundTrip(t *testing.T) {
	is := is.New(t)
	st := &dupOnce{MemoryStore: licensing.NewMemoryStore()}
	e := newEnv(t, func(c *licensing.Config) {
		c.Store = st
		c.Hasher = &licensing.Argon2Hasher{Time: 1, Memory: 64}
	})
	_, key := e.create(t, "t-owner", "prod")
	is.True(st.failed.Load()) // the first key's prefix "collided": a new key was made
	keys, _ := st.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
	is.Equal(len(keys), 1)
	is.Equal(keys[0].LookupValue, key[:8])                        // looked up by the masked prefix
	is.True(len(keys[0].Digest) > 40 && keys[0].Digest[0] == '$') // a PHC string
	_, err := e.svc.ValidateKey(context.Background(), licensing.ValidateInput{LicenseKey: key})
	is.NoErr(err)
	body := key[:8] + strings.Repeat("0", 48) // same lookup prefix, another key
	other := body + fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body)))
	_, err = licensing.ParseKey(other)
	is.NoErr(err) // well-formed, so only the digest can refuse it
	_, err = e.svc.ValidateKey(context.Background(), licensing.ValidateInput{LicenseKey: other})
	is.True(errors.Is(err, licensing.ErrInvalidLicense)) // the candidate's digest does not verify
}
