package licensing

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/licensekit/licensing/internal/atomicfile"
	"github.com/licensekit/licensing/internal/keyfile"
)

// Files LoadOrCreateSigningKeys keeps in its directory (the reference
// server's names too).
const (
	signingKeyFileEd25519 = "signing-ed25519.pem"
	signingKeyFileRSA     = "signing-rsa.pem"
)

// LoadOrCreateSigningKeys returns the signing keys kept in dir: an Ed25519
// key and an RSA-2048 key (for RS256 tokens, which most verifiers expect),
// as PKCS #8 PEM files of mode 0600 named signing-ed25519.pem and
// signing-rsa.pem. On first use, when dir holds neither
// file, it creates both, durably and exclusively (each written to a
// temporary file, synced and linked into place, which never replaces a
// file), so that of callers starting at once on one directory all get the
// keys of the one that created them. When only one of them exists (and was
// not made in the last few seconds by such a caller) it refuses: a
// lost signing key means every deployed client stops trusting what the
// service signs, which must be an operator's decision, not a silent
// regeneration.
func LoadOrCreateSigningKeys(dir string) (*SigningKeys, error) {
	return loadOrCreateSigningKeys(dir, false)
}

// loadOrCreateSigningKeys is LoadOrCreateSigningKeys; waited says that it
// already waited for another process to create the second file.
func loadOrCreateSigningKeys(dir string, waited bool) (*SigningKeys, error) {
	edPath, rsaPath := filepath.Join(dir, signingKeyFileEd25519), filepath.Join(dir, signingKeyFileRSA)
	edPEM, edErr := os.ReadFile(edPath)
	rsaPEM, rsaErr := os.ReadFile(rsaPath)
	switch {
	case errors.Is(edErr, fs.ErrNotExist) && errors.Is(rsaErr, fs.ErrNotExist):
		keys, err := createSigningKeys(dir, edPath, rsaPath)
		if errors.Is(err, fs.ErrExist) {
			return loadSigningKeysCreatedElsewhere(dir, rsaPath)
		}
		return keys, err
	case (edErr == nil) != (rsaErr == nil) && !waited && createdJustNow(edPath, rsaPath):
		// Another process is between its two files, or was when this one
		// read them: give it time, then read both again.
		return loadSigningKeysCreatedElsewhere(dir, rsaPath)
	case edErr != nil:
		return nil, wrapErr("signing keys: "+signingKeyFileEd25519+" is missing or unreadable while "+signingKeyFileRSA+" exists", edErr)
	case rsaErr != nil:
		return nil, wrapErr("signing keys: "+signingKeyFileRSA+" is missing or unreadable while "+signingKeyFileEd25519+" exists", rsaErr)
	}
	ed, err := keyfile.Parse(edPEM)
	if err != nil {
		return nil, configError(fmt.Sprintf("%s: %v", edPath, err))
	}
	rk, err := keyfile.Parse(rsaPEM)
	if err != nil {
		return nil, configError(fmt.Sprintf("%s: %v", rsaPath, err))
	}
	edKey, rsaKey, err := keyfile.Pair(edPath, ed, rsaPath, rk)
	if err != nil {
		return nil, configError(err.Error())
	}
	return NewSigningKeys(edKey, rsaKey)
}

// createSigningKeys makes both keys and creates their files exclusively,
// the Ed25519 one first: of several processes starting at once on one
// directory, the one that creates it creates the RSA file too, and the
// others get an error wrapping fs.ErrExist.
func createSigningKeys(dir, edPath, rsaPath string) (*SigningKeys, error) {
	keys, err := GenerateSigningKeys(2048)
	if err != nil {
		return nil, &Error{Code: CodeInternal, Message: "Could not generate signing keys.", Err: err}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, wrapErr("signing keys", err)
	}
	for _, f := range []struct {
		path string
		key  crypto.Signer
	}{{edPath, keys.ed}, {rsaPath, keys.rsa}} {
		pemBytes, err := keyfile.Marshal(f.key)
		if err != nil {
			return nil, wrapErr("signing keys", err)
		}
		if err := atomicfile.Create(f.path, pemBytes); err != nil {
			return nil, wrapErr("signing keys", err)
		}
	}
	return keys, nil
}

// loadSigningKeysCreatedElsewhere loads the keys that another process
// created while this one tried to: it waits up to ten seconds for that
// process's second file, then loads both.
func loadSigningKeysCreatedElsewhere(dir, rsaPath string) (*SigningKeys, error) {
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(rsaPath); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return loadOrCreateSigningKeys(dir, true)
}

// createdJustNow reports whether the one of the two files that exists was
// written in the last ten seconds: a caller creating both may be between
// them.
func createdJustNow(paths ...string) bool {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) < 10*time.Second {
			return true
		}
	}
	return false
}
