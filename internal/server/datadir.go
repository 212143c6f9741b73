package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The data directory holds the pepper, the signing keys and the owner
// token's digest: whoever may write it may plant an owner token or a
// signing key of their own. As OpenSSH's StrictModes does for
// authorized_keys, a start refuses a directory, or a file the server reads
// from it, that another user owns or may write, naming the path and the
// command that fixes it. The rule:
//
//   - the data directory is owned by the server's user; open to others, it
//     is made 0700 (the server owns it);
//   - every state file in it, the store's directory and the store's files
//     are owned by the server's user or root and writable by neither group
//     nor others; the secrets (pepper, signing keys, demo.json) are not
//     readable by others either;
//   - a -signing-key, -rsa-signing-key or -config file outside the data
//     directory, and the directory that holds it, are owned by the server's
//     user or root and writable by neither group nor others (root-owned and
//     group-readable, as configuration management installs them, is
//     fine); the keys are not readable by others.
//
// Directories above these are not checked.

// checkedStateFiles are the files of the data directory the server reads, and
// whether each is a secret.
var checkedStateFiles = []struct {
	name   string
	secret bool
}{
	{"pepper", true},
	{"demo.json", true},
	{"signing-ed25519.pem", true},
	{"signing-rsa.pem", true},
	{"signing-keys.json", false},
	{issuedFile, false},
	{restoreMarker, false},
	{".lock", false},
}

// fileOwner returns the owner of fi.
func fileOwner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// checkPath checks one path (followed if it is a symbolic link; a missing
// path passes) against the rule: owned by the server's user (or root, when
// rootOK), writable by neither group nor others, and, for a secret, not
// readable by others.
func checkPath(path string, secret, rootOK bool) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	euid := os.Geteuid()
	if uid := fileOwner(fi); uid != euid && !(rootOK && uid == 0) {
		return fmt.Errorf("%s is owned by uid %d, not by the server's user (uid %d): another user could have put it there; check it, then chown %d %s (or run the server as uid %d)",
			path, uid, euid, euid, path, uid)
	}
	perm := fi.Mode().Perm()
	fix := "chmod go-w " + path
	if fi.IsDir() {
		fix = "chmod 700 " + path
	} else if secret {
		fix = "chmod 600 " + path
	}
	if perm&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %s): another user could replace what the server reads there; %s", path, fi.Mode(), fix)
	}
	if secret && perm&0o004 != 0 {
		return fmt.Errorf("%s is readable by others (mode %s): it is a secret; %s", path, fi.Mode(), fix)
	}
	return nil
}

// checkDataDir checks the data directory itself, before anything in it is
// opened: owned by the server's user, and made 0700 if it is open to others.
func (m *Main) checkDataDir() error {
	fi, err := os.Stat(m.DataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	euid := os.Geteuid()
	if uid := fileOwner(fi); uid != euid {
		return fmt.Errorf("data directory %s is owned by uid %d, not by the server's user (uid %d): whoever owns it may plant an owner token or a signing key there; chown %d %s and chmod 700 %s (or use a directory of the server's user)",
			m.DataDir, uid, euid, euid, m.DataDir, m.DataDir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(m.DataDir, 0o700); err != nil {
			return fmt.Errorf("data directory %s is open to other users (mode %s) and cannot be made private: %w; chmod 700 %s", m.DataDir, perm, err, m.DataDir)
		}
		m.logger.Info("made the data directory private (mode 0700)", "dir", m.DataDir, "was", perm.String())
	}
	return nil
}

// checkStateFiles checks what the server reads from the data directory and
// the files named by flags outside it. It runs with the lock held, before
// any of them is read.
func (m *Main) checkStateFiles() error {
	for _, f := range checkedStateFiles {
		if err := checkPath(filepath.Join(m.DataDir, f.name), f.secret, false); err != nil {
			return err
		}
	}
	if m.StoreKind == "file" {
		store := filepath.Join(m.DataDir, "store")
		if err := checkPath(store, false, false); err != nil {
			return err
		}
		entries, err := os.ReadDir(store)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store directory: %w", err)
		}
		for _, e := range entries {
			if err := checkPath(filepath.Join(store, e.Name()), false, true); err != nil {
				return err
			}
		}
	}
	for _, f := range []struct {
		path   string
		secret bool
	}{{m.SigningKey, true}, {m.RSASigningKey, true}, {m.ConfigPath, false}} {
		if f.path == "" {
			continue // the default, in the data directory: checked above
		}
		if err := checkPath(filepath.Dir(f.path), false, true); err != nil {
			return err
		}
		if err := checkPath(f.path, f.secret, true); err != nil {
			return err
		}
	}
	return nil
}
