package licensing_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

func TestLoadOrCreateSigningKeys(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "keys")
	first, err := licensing.LoadOrCreateSigningKeys(dir)
	is.NoErr(err)
	is.True(first.HasRSA()) // RS256 available from the start
	for _, name := range []string{"signing-ed25519.pem", "signing-rsa.pem"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		is.NoErr(err)
		is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // private keys are private
	}
	again, err := licensing.LoadOrCreateSigningKeys(dir)
	is.NoErr(err)
	is.True(bytes.Equal(again.JWKS(), first.JWKS())) // the same keys, not new ones
	is.Equal(again.KeyID(), first.KeyID())

	is.NoErr(os.Remove(filepath.Join(dir, "signing-rsa.pem")))
	long := time.Now().Add(-time.Hour) // lost long after it was made: no creator is still at work
	is.NoErr(os.Chtimes(filepath.Join(dir, "signing-ed25519.pem"), long, long))
	_, err = licensing.LoadOrCreateSigningKeys(dir)
	is.True(err != nil) // one key lost: refuse, never regenerate silently
	is.NoErr(os.Remove(filepath.Join(dir, "signing-ed25519.pem")))
	os.WriteFile(filepath.Join(dir, "signing-ed25519.pem"), []byte("not a key"), 0o600)
	is.NoErr(os.Chtimes(filepath.Join(dir, "signing-ed25519.pem"), long, long))
	_, err = licensing.LoadOrCreateSigningKeys(dir)
	is.True(err != nil) // a damaged file is an error too
}

// TestLoadOrCreateSigningKeysRace: callers starting at once on one new
// directory all get the one pair of keys that ends up in it.
func TestLoadOrCreateSigningKeysRace(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "keys")
	const n = 8
	kids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := licensing.LoadOrCreateSigningKeys(dir)
			if errs[i] = err; err == nil {
				kids[i] = k.KeyID()
			}
		}()
	}
	wg.Wait()
	final, err := licensing.LoadOrCreateSigningKeys(dir)
	is.NoErr(err)
	for i := range n {
		is.NoErr(errs[i])
		is.Equal(kids[i], final.KeyID()) // every caller serves the key on disk
	}
}
