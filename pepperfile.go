package licensing

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/licensekit/licensing/internal/atomicfile"
)

// LoadOrCreatePepper returns the pepper kept in the file at path, creating
// it on first use: MinPepperLength random bytes, hex encoded, in a file of
// mode 0600 (the reference server's <data>/pepper format, so either reads
// the other's). A missing directory is created (mode 0700).
//
// The file is created only when missing, and whole: it is written to a
// temporary file, synced and then linked into place, which never replaces
// a file, so no reader sees a partial pepper and of concurrent first calls
// one writes the pepper and every one returns it. An existing file is never
// replaced: one that cannot be read, or that does not hold a hex pepper of
// at least MinPepperLength bytes, is an error naming path and the fix, since
// a new pepper would make every key issued under the old one stop
// validating.
func LoadOrCreatePepper(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		pepper := make([]byte, MinPepperLength)
		if _, err := rand.Read(pepper); err != nil {
			return nil, &Error{Code: CodeInternal, Message: "Could not generate a pepper.", Err: err}
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, pepperFileError(path, "cannot be created; check that its directory can be created and written", err)
		}
		err = atomicfile.Create(path, []byte(hex.EncodeToString(pepper)+"\n"))
		if err == nil {
			return pepper, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, pepperFileError(path, "cannot be created; check that its directory is writable", err)
		}
		b, err = os.ReadFile(path) // another caller created it first
	}
	if err != nil {
		return nil, pepperFileError(path, "cannot be read; give this process read access to it (keep it mode 0600), and never replace it: every key issued under it would stop validating", err)
	}
	pepper, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(pepper) < MinPepperLength {
		return nil, pepperFileError(path, fmt.Sprintf("does not hold a pepper of at least %d bytes in hex (%d hex characters); restore the original file from a backup, or, only if no key was ever issued under it, remove it and a new pepper is made", MinPepperLength, 2*MinPepperLength), nil)
	}
	return pepper, nil
}

// pepperFileError is LoadOrCreatePepper's error: what is wrong with the
// file at path and what to do. It never holds the file's content.
func pepperFileError(path, problem string, cause error) error {
	return &Error{Code: CodeInvalid, Message: "pepper file " + path + " " + problem, Err: cause}
}
