// Package atomicfile writes small files that must survive a crash whole or
// not at all: the secrets and records of a data directory.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteNew creates path with data, mode 0600, only if path does not exist:
// it writes a temporary file in the same directory, syncs it, links it to
// path (link(2) never replaces a file) and syncs the directory. Of several
// processes calling it at once on one path exactly one succeeds; the others
// get an error for which errors.Is(err, fs.ErrExist) holds and path holds
// the winner's data, whole: a partial file is never visible at path.
func WriteNew(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new temporary file, mode 0600, in path's
// directory, synced and closed, and returns its name; on error none is
// left.
func writeTemp(path string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return "", err
	}
	if err = tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// Write replaces path with data, mode 0600: it writes a temporary file in
// the same directory, syncs it, renames it over path, and syncs the
// directory, so that after a crash path holds the old or the new content.
func Write(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
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
