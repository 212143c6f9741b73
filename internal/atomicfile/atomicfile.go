// Package atomicfile writes small files that must survive a crash whole or
// not at all: the secrets and records of a data directory.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, mode 0600: it writes a temporary file in
// the same directory, syncs it, renames it over path, and syncs the
// directory, so that after a crash path holds the old or the new content.
func Write(path string, data []byte) error {
	return placeTemp(path, data, os.Rename)
}

// placeTemp writes data to a new temporary file beside path (mode 0600),
// syncs it, puts it at path with place (rename or link), and syncs the
// directory. The temporary name is removed in any case.
func placeTemp(path string, data []byte, place func(oldpath, newpath string) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err = tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := place(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Remove removes path and syncs its directory, so that after a crash path
// is gone for good.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Create writes data to path, mode 0600, only if path does not exist: it
// writes and syncs a temporary file in the same directory, then links it
// to path, which fails with an error wrapping fs.ErrExist if path exists
// (never replacing it), and syncs the directory. No reader ever sees a
// partial file at path, and of two concurrent calls exactly one creates it.
// Where the system allows (Linux, O_TMPFILE), the temporary file has no
// name until it is linked, so a process killed half-way leaves nothing
// behind: Create is used in directories that no start cleans (a shared
// -signing-key's), and the file holds a private key.
func Create(path string, data []byte) error {
	if ok, err := createUnnamed(path, data); ok {
		return err
	}
	return placeTemp(path, data, os.Link)
}
