package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/licensekit/licensing/internal/atomicfile"
)

// newOwnerToken makes an owner token and its digest as demo.json keeps it.
func newOwnerToken() (token, digest string, err error) {
	raw := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return "", "", err
	}
	token = "lk_" + hex.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(sum[:]), nil
}

// ownerTokenCommand: licensing-server owner-token [-data DIR]. It gives the
// demo organization's owner a new token when the one printed at the first
// start is lost: the digest in <data>/demo.json is replaced atomically (the
// old token stops working), the organization and owner ids are kept, and so
// are the keys. It runs with the server stopped, holding the data
// directory's lock, since the server reads demo.json only as it starts. A
// server with -config keeps its owners' tokens in that file: it is refused.
// It runs as the server's user, the data directory's owner, and refuses a
// demo.json the server would refuse (datadir.go).
func (m *Main) ownerTokenCommand(args []string) error {
	if m.Stdout == nil {
		m.Stdout = os.Stdout
	}
	fs := flag.NewFlagSet("licensing-server owner-token", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	data := fs.String("data", envOr(m.Getenv, "LICENSING_DATA", "./licensing-data"), "state directory of the stopped server (LICENSING_DATA)")
	config := fs.String("config", envOr(m.Getenv, "LICENSING_CONFIG", ""), "the server's configuration file, if it has one: then this command refuses (LICENSING_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("owner-token: unexpected argument %s: usage: licensing-server owner-token [-data DIR]", quote(fs.Arg(0)))}
	}
	if *config != "" {
		return fmt.Errorf("owner-token: the server runs with -config %s, whose tokens list holds its owners' token digests: make a new token, put its SHA-256 (printf %%s \"$TOKEN\" | sha256sum) in that list for the owner's userId and reload the server (SIGHUP)", *config)
	}
	fi, err := os.Stat(*data)
	if err != nil {
		return fmt.Errorf("owner-token: data directory %s: %w (pass the server's -data)", *data, err)
	}
	// The server takes its data directory and demo.json only from its own
	// user (datadir.go): a demo.json written by another user (root, under
	// sudo) would be refused at the next start, and one that another user
	// owns may have been planted.
	if uid, euid := fileOwner(fi), os.Geteuid(); uid != euid {
		return fmt.Errorf("owner-token: data directory %s is owned by uid %d, not by the user running owner-token (uid %d): the server runs as its owner; run owner-token as that user (sudo -u '#%d' licensing-server owner-token -data %s)",
			*data, uid, euid, uid, *data)
	}
	path := filepath.Join(*data, "demo.json")
	if err := checkPath(path, true, false); err != nil {
		return fmt.Errorf("owner-token: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(*data, ".lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("owner-token: %s is a symbolic link: the lock is a plain file the server makes; check who made the link, then remove it", filepath.Join(*data, ".lock"))
	}
	if err != nil {
		return fmt.Errorf("owner-token: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("owner-token: a licensing-server is running on %s: stop it, run owner-token, then start it again (it reads demo.json only as it starts)", *data)
		}
		return fmt.Errorf("owner-token: lock %s: %w", lock.Name(), err)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("owner-token: %s has no demo.json, so no demo organization: a server started without -config on it makes one and prints its owner token; with -config, the owners' tokens are in that file", *data)
	}
	if err != nil {
		return fmt.Errorf("owner-token: %w", err)
	}
	var d demo
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("owner-token: %s: %w", path, err)
	}
	if err := d.check(); err != nil {
		return fmt.Errorf("owner-token: %s: %w", path, err)
	}
	token, digest, err := newOwnerToken()
	if err != nil {
		return fmt.Errorf("owner-token: %w", err)
	}
	d.TokenSHA256 = digest
	out, _ := json.MarshalIndent(d, "", "  ")
	if err := atomicfile.Write(path, append(out, '\n')); err != nil {
		return fmt.Errorf("owner-token: save %s: %w (the old token still works)", path, err)
	}
	_, err = fmt.Fprintf(m.Stdout, "owner token: %s\n", token)
	return err
}
