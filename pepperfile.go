package licensing

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
// validating. So is anything at path but a regular file of at most 4 KiB
// (a directory, a named pipe, a device) and a symbolic link to a missing
// file; a link to a file is followed, as secrets are often mounted.
func LoadOrCreatePepper(path string) ([]byte, error) {
	b, err := readPepperFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			// A link whose file is missing: a secret not mounted yet, or
			// lost. A new pepper there would orphan every issued key.
			return nil, pepperFileError(path, "is a symbolic link to a file that does not exist; restore or mount the file it points to, or, only if no key was ever issued under it, remove the link and a new pepper is made", err)
		}
		// Anything else found there now was created by another caller
		// since the read: the exclusive create below fails and reads it.
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
			return nil, pepperFileError(path, "cannot be created; check that its directory is writable and its file system has room", err)
		}
		b, err = readPepperFile(path) // another caller created it first
	}
	if err != nil {
		var bad *badPepperFile
		if errors.As(err, &bad) {
			return nil, pepperFileError(path, bad.problem, nil)
		}
		return nil, pepperFileError(path, "cannot be read; give this process read access to it (keep it mode 0600), and never replace it: every key issued under it would stop validating", err)
	}
	pepper, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(pepper) < MinPepperLength {
		return nil, pepperFileError(path, fmt.Sprintf("does not hold a pepper of at least %d bytes in hex (%d hex characters); restore the original file from a backup, or, only if no key was ever issued under it, remove it and a new pepper is made", MinPepperLength, 2*MinPepperLength), nil)
	}
	return pepper, nil
}

// maxPepperFile bounds what LoadOrCreatePepper reads: a pepper of 1,024
// bytes in hex, with room for white space.
const maxPepperFile = 4 << 10

// badPepperFile is what readPepperFile finds at a path that holds no
// pepper file, whatever its content: the problem and the fix.
type badPepperFile struct{ problem string }

func (e *badPepperFile) Error() string { return e.problem }

// readPepperFile reads the regular file at path (following symbolic
// links), at most maxPepperFile bytes of it. Anything else there (a
// directory, a named pipe that would block the open until a writer comes,
// a device) or a larger file is a *badPepperFile, found without reading it.
func readPepperFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkPepperFileInfo(fi); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkPepperFileInfo(fi); err != nil { // replaced since the first look
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, maxPepperFile))
}

func checkPepperFileInfo(fi fs.FileInfo) error {
	const fix = "; move it away and point to the pepper file (or, only if no key was ever issued under a pepper there, to a path where a new one can be made)"
	switch {
	case fi.IsDir():
		return &badPepperFile{"is a directory, not a file" + fix}
	case !fi.Mode().IsRegular():
		return &badPepperFile{fmt.Sprintf("is not a regular file (mode %v)%s", fi.Mode(), fix)}
	case fi.Size() > maxPepperFile:
		return &badPepperFile{fmt.Sprintf("is %d bytes: a pepper file holds at least %d hex characters and at most %d bytes; check the path, or restore the original file from a backup", fi.Size(), 2*MinPepperLength, maxPepperFile)}
	}
	return nil
}

// pepperFileError is LoadOrCreatePepper's error: what is wrong with the
// file at path and what to do. It never holds the file's content.
func pepperFileError(path, problem string, cause error) error {
	return &Error{Code: CodeInvalid, Message: "pepper file " + path + " " + problem, Err: cause}
}
