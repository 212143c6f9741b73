package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The data directory holds the pepper, the signing keys and the owner
// token's digest: whoever may write it may plant an owner token or a
// signing key of their own. As OpenSSH's StrictModes does for
// authorized_keys, a start refuses a directory, or a file the server reads
// from it, that another user owns or may write, naming the path and the
// command that fixes it. The rule:
//
//   - the data directory is owned by the server's user and writable by
//     neither group nor others (a shared directory such as /tmp is never
//     taken from its other users); readable by others, it is made 0700;
//   - every state file in it, the store's directory and the store's files
//     are owned by the server's user or root and writable by neither group
//     nor others; the secrets (pepper, signing keys, demo.json) are not
//     readable by others either;
//   - a -signing-key, -rsa-signing-key or -config file outside the data
//     directory, and the directory that holds it, are owned by the server's
//     user or root and writable by neither group nor others (root-owned and
//     group-readable, as configuration management installs them, is
//     fine); the keys are not readable by others. A reload (SIGHUP)
//     checks -config again before it reads it.
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
	{cursorsFile, false},
	{".lock", false},
}

// fileOwner returns the owner of fi.
func fileOwner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// checkPath checks one path (a missing path passes) against the rule:
// owned by the server's user (or root, when rootOK), writable by neither
// group nor others, and, for a secret, not readable by others. A symbolic
// link is followed, and must itself be the server's user's or root's:
// whoever made it may point it elsewhere between this check and the read.
func checkPath(path string, secret, rootOK bool) error {
	euid := os.Geteuid()
	li, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if li.Mode()&fs.ModeSymlink != 0 {
		if uid := fileOwner(li); uid != euid && uid != 0 {
			return fmt.Errorf("%s is a symbolic link owned by uid %d, not by the server's user (uid %d): another user could have put it there, and may point it elsewhere; check it, then replace it with the file it should be (or a link the server's user makes)",
				path, uid, euid)
		}
		// Whoever may write the directory the link leads to may swap the
		// file there between this check and the read: that directory is
		// held to the rule of a directory outside the data directory. (A
		// link to a directory leads to a directory checked below; what is
		// above it is not checked, as above the data directory.)
		if target, err := filepath.EvalSymlinks(path); err == nil && !isDir(target) {
			if err := checkPath(filepath.Dir(target), false, true); err != nil {
				return fmt.Errorf("%s, the directory of the target of the symbolic link %s, %w", filepath.Dir(target), path, trimPath(err, filepath.Dir(target)))
			}
		}
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
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
// opened: owned by the server's user, writable by neither group nor others,
// and made 0700 if others may read it.
func (m *Main) checkDataDir() error {
	euid := os.Geteuid()
	// Every file is read through the path: a link another user made could
	// be pointed at their own directory once these checks passed.
	if li, err := os.Lstat(m.DataDir); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		if uid := fileOwner(li); uid != euid && uid != 0 {
			return fmt.Errorf("data directory %s is a symbolic link owned by uid %d, not by the server's user (uid %d): another user could have put it there, and may point it elsewhere; use the directory it leads to, or a link the server's user makes",
				m.DataDir, uid, euid)
		}
	}
	fi, err := os.Stat(m.DataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if uid := fileOwner(fi); uid != euid {
		return fmt.Errorf("data directory %s is owned by uid %d, not by the server's user (uid %d): whoever owns it may plant an owner token or a signing key there; chown %d %s and chmod 700 %s (or use a directory of the server's user)",
			m.DataDir, uid, euid, euid, m.DataDir, m.DataDir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		// Others may have put files in it already, and may use it (a
		// shared directory such as /tmp): it is refused, never taken
		// from them.
		who := "group"
		if perm&0o002 != 0 {
			who = "others"
		}
		return fmt.Errorf("data directory %s is writable by %s (mode %s): other users may have put files in it, and may use it; use a directory of the server's own, such as %s (the server makes it, mode 0700), or chmod 700 %s if nobody else uses it",
			m.DataDir, who, fi.Mode(), filepath.Join(m.DataDir, "licensing"), m.DataDir)
	} else if perm&0o077 != 0 {
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
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("store directory: %w", err)
		} // not a directory: refused by checkStoreDir, or by the store as it opens
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
		if err := checkOutside(f.path, f.secret); err != nil {
			return err
		}
	}
	return nil
}

// checkOutside checks a file named by a flag, outside the data directory,
// and the directory that holds it; "" (the default, in the data directory,
// checked with it) passes. A reload checks -config with it again before
// reading it.
func checkOutside(path string, secret bool) error {
	if path == "" {
		return nil
	}
	if err := checkPath(filepath.Dir(path), false, true); err != nil {
		return err
	}
	return checkPath(path, secret, true)
}

// trimPath returns err without its leading "path ", so that a caller can
// name the path its own way.
func trimPath(err error, path string) error {
	if rest, ok := strings.CutPrefix(err.Error(), path+" "); ok {
		return errors.New(rest)
	}
	return err
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
