package server

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/licensekit/licensing/filestore"
	"github.com/licensekit/licensing/internal/atomicfile"
)

// A backup is a tar archive of the state directory as the server uses it:
// the store's consistent backup (entry "store", written by the store's
// Backup method), the files of the directory that the server made or reads
// there (pepper, signing-ed25519.pem, signing-rsa.pem, signing-keys.json,
// demo.json; those present), and last a
// manifest (entry "backup.json") with the store entry's size and SHA-256,
// so that a cut archive is refused. It holds the pepper and the signing keys
// in clear: keep it as secret as the directory.
//
// The server takes it on request over a Unix socket in the state directory
// (AdminSocket, mode 0600 in a 0700 directory): whoever may read the
// directory may back it up, and nothing is exposed on the network.

// AdminSocket is the name, in the state directory, of the Unix socket on
// which the running server answers GET /backup.
const AdminSocket = "admin.sock"

const (
	storeEntry    = "store"
	manifestEntry = "backup.json"
	// restoreMarker is in a data directory while restore fills it: a start
	// refuses the directory until the restore has finished (or a crash
	// cut it short and the directory was emptied).
	restoreMarker = "RESTORING"
)

// backupFiles are the state directory's files a backup carries beside the store.
// Without the RSA key and the record of signing keys, a restored server
// would make a new RS256 key (the default token algorithm) unchecked.
var backupFiles = []string{"pepper", "signing-ed25519.pem", "signing-rsa.pem", "signing-keys.json", "demo.json"}

// backuper is a store that writes a consistent copy of itself while it
// serves, as (*filestore.Store).Backup does; restoreStore is its inverse,
// filling an empty directory from that copy.
type backuper interface {
	Backup(ctx context.Context, w io.Writer) error
}

// restoreStore restores a store backup into dir (which must not exist or be
// empty).
var restoreStore = filestore.Restore

// manifest is the archive's last entry. Files names the other files it
// holds, exactly; FileSHA256 gives their SHA-256 (hex) by name, absent in
// archives of earlier builds.
type manifest struct {
	Created     time.Time         `json:"created"`
	Files       []string          `json:"files"`
	StoreBytes  int64             `json:"storeBytes"`
	StoreSHA256 string            `json:"storeSha256"`
	FileSHA256  map[string]string `json:"fileSha256,omitempty"`
}

// serveAdmin serves GET /backup on <data>/admin.sock when the store can
// back itself up. The returned function stops it. Failing to listen (a
// path too long for a socket, say) is logged, not fatal.
// maxSocketPath is the length a Unix socket's path must stay under (Linux's
// sun_path holds 108 bytes with the final NUL).
const maxSocketPath = 108

// listenPrivate listens on a Unix socket at path that is mode 0600 from the
// moment it can be reached there: it is made in a private (0700) directory
// beside path, whatever the umask, given its mode, then renamed into place.
func listenPrivate(path string) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".admin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	if len(tmp) >= maxSocketPath {
		// The detour does not fit a socket address (108 bytes on Linux)
		// where path does: listen at path and narrow it at once, relying
		// on the data directory's own privacy for that moment.
		ln, err := net.Listen("unix", path)
		if err == nil {
			if err = os.Chmod(path, 0o600); err != nil {
				ln.Close()
				return nil, err
			}
		}
		return ln, err
	}
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err = os.Chmod(tmp, 0o600); err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func (m *Main) serveAdmin() (stop func()) {
	b, ok := m.store.(backuper)
	if !ok {
		return func() {}
	}
	path := filepath.Join(m.DataDir, AdminSocket)
	os.Remove(path) // a socket left by a killed server; the store's lock says no other server runs here
	ln, err := listenPrivate(path)
	if err != nil {
		m.logger.Error("admin socket: backups unavailable", "err", err)
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		if err := m.writeBackup(r.Context(), b, w); err != nil {
			m.logger.Error("backup failed", "err", err)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() {
		srv.Close()
		os.Remove(path)
	}
}

// writeBackup writes the archive to w. The store's backup goes first to a
// temporary file in the state directory (tar needs its size up front).
func (m *Main) writeBackup(ctx context.Context, b backuper, w http.ResponseWriter) error {
	if err := m.svc.Flush(ctx); err != nil { // the validation records so far
		http.Error(w, "flush validation records failed", http.StatusServiceUnavailable)
		return err
	}
	tmp, err := os.CreateTemp(m.DataDir, ".backup-*")
	if err != nil {
		http.Error(w, "backup failed", http.StatusInternalServerError)
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sum := sha256.New()
	if err := b.Backup(ctx, io.MultiWriter(tmp, sum)); err != nil {
		http.Error(w, "backup failed", http.StatusInternalServerError)
		return fmt.Errorf("store backup: %w", err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		http.Error(w, "backup failed", http.StatusInternalServerError)
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	man, err := writeArchive(w, m.DataDir, tmp, size, hex.EncodeToString(sum.Sum(nil)), time.Now())
	if err != nil {
		return err
	}
	m.logger.Info("backup written", "store_bytes", man.StoreBytes, "files", len(man.Files))
	return nil
}

// writeArchive writes to w the archive of the state directory dir: the
// files of backupFiles that it holds, the store's backup (size bytes read
// from store, of SHA-256 storeSum in hex), then the manifest, which it
// returns.
func writeArchive(w io.Writer, dir string, store io.Reader, size int64, storeSum string, now time.Time) (manifest, error) {
	tw := tar.NewWriter(w)
	now = now.UTC().Truncate(time.Second)
	man := manifest{Created: now, StoreBytes: size, StoreSHA256: storeSum, FileSHA256: map[string]string{}}
	add := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: size, ModTime: now, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.CopyN(tw, r, size)
		return err
	}
	for _, name := range backupFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = add(name, int64(len(data)), bytes.NewReader(data))
		}
		if err != nil {
			return man, err
		}
		man.Files = append(man.Files, name)
		sum := sha256.Sum256(data)
		man.FileSHA256[name] = hex.EncodeToString(sum[:])
	}
	if err := add(storeEntry, size, store); err != nil {
		return man, err
	}
	mb, _ := json.MarshalIndent(man, "", "  ")
	if err := add(manifestEntry, int64(len(mb)), bytes.NewReader(mb)); err != nil {
		return man, err
	}
	return man, tw.Close()
}

// subcommand runs "backup" and "restore"; ok is false for any other args.
func (m *Main) subcommand(args []string) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	if m.Stderr == nil {
		m.Stderr = os.Stderr
	}
	var err error
	switch args[0] {
	case "backup":
		err = m.backupCommand(args[1:])
	case "restore":
		err = m.restoreCommand(args[1:])
	case "owner-token":
		err = m.ownerTokenCommand(args[1:])
	default:
		return 0, false
	}
	var usage usageError
	switch {
	case errors.As(err, &usage):
		fmt.Fprintln(m.Stderr, "licensing-server:", err)
		return 2, true
	case err != nil:
		fmt.Fprintln(m.Stderr, "licensing-server:", err)
		return 1, true
	}
	return 0, true
}

type usageError struct{ error }

// backupCommand: licensing-server backup -data DIR -o FILE.
func (m *Main) backupCommand(args []string) error {
	fs := flag.NewFlagSet("licensing-server backup", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	data := fs.String("data", envOr(m.Getenv, "LICENSING_DATA", "./licensing-data"), "state directory of the running server (LICENSING_DATA)")
	out := fs.String("o", "", "archive to write (mode 0600; it holds the pepper and signing keys)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *out == "" || fs.NArg() > 0 {
		return usageError{errors.New("usage: licensing-server backup -data DIR -o FILE")}
	}
	sock := filepath.Join(*data, AdminSocket)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://licensing-admin/backup", nil)
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("backup: is the server running with -data %s and -store file? %w", *data, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("backup: server answered %s: %s", res.Status, msg)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".backup-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err := io.Copy(tmp, res.Body); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	man, err := checkArchive(tmp, size)
	if err != nil {
		return fmt.Errorf("backup: the archive received is not whole: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "backup written to %s (store %d bytes, files %v)\n", *out, man.StoreBytes, man.Files)
	return nil
}

// checkArchive reads an archive of size bytes through, writing nothing,
// and returns its manifest, refusing one without a manifest or whose
// entries differ from it.
func checkArchive(r io.Reader, size int64) (manifest, error) {
	return readArchive(r, size, nil, func(name string, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
}

// readArchive calls each for every entry but the manifest, checks the store
// entry against the manifest, and refuses unknown names, any entry after the
// manifest and an archive without one. The other files must be exactly
// those the manifest lists, with its checksums when it gives them (archives
// of earlier builds do not).
//
// size is the archive's length in bytes: the entries together may not
// declare more, so that an entry that is mostly holes (a sparse entry of
// 1 GiB in 10 KB) is refused before anything is read of it. want, when
// not nil, is the manifest a first pass read (checkArchive): each entry is
// checked against it before each is called, so that nothing is written
// beyond what the manifest declares, and the manifest read at the end must
// be the same.
func readArchive(r io.Reader, size int64, want *manifest, each func(name string, r io.Reader) error) (manifest, error) {
	var man manifest
	tr := tar.NewReader(r)
	var declared int64 // the entries' sizes so far
	seen := map[string]bool{}
	var storeSum string
	var storeSize int64
	fileSums := map[string]string{} // SHA-256 (hex) of the files but the store, by name
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return man, err
		}
		if seen[manifestEntry] {
			return man, fmt.Errorf("entry %q after the manifest", h.Name)
		}
		if h.Typeflag != tar.TypeReg || seen[h.Name] || !allowedEntry(h.Name) {
			return man, fmt.Errorf("unexpected entry %q", h.Name)
		}
		if h.Size < 0 || h.Size > size-declared {
			return man, fmt.Errorf("entry %q declares %d bytes, more than the archive of %d bytes holds (a sparse or forged entry)", h.Name, h.Size, size)
		}
		declared += h.Size
		if err := want.allows(h); err != nil {
			return man, err
		}
		seen[h.Name] = true
		switch h.Name {
		case manifestEntry:
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&man); errors.Is(err, io.ErrUnexpectedEOF) {
				return man, fmt.Errorf("manifest: the archive is cut short: %w", err)
			} else if err != nil {
				return man, fmt.Errorf("manifest: %w", err)
			}
		case storeEntry:
			sum := sha256.New()
			if err := each(h.Name, io.TeeReader(tr, sum)); err != nil {
				return man, err
			}
			if _, err := io.Copy(sum, tr); err != nil { // what the store's reader left
				return man, err
			}
			storeSum, storeSize = hex.EncodeToString(sum.Sum(nil)), h.Size
		default:
			if h.Size > 1<<20 {
				return man, fmt.Errorf("entry %q: too large", h.Name)
			}
			sum := sha256.New()
			if err := each(h.Name, io.TeeReader(tr, sum)); err != nil {
				return man, err
			}
			if _, err := io.Copy(sum, tr); err != nil {
				return man, err
			}
			fileSums[h.Name] = hex.EncodeToString(sum.Sum(nil))
		}
	}
	switch {
	case !seen[manifestEntry]:
		return man, errors.New("no manifest: the archive is cut short")
	case !seen[storeEntry]:
		return man, errors.New("no store entry")
	case storeSize != man.StoreBytes || storeSum != man.StoreSHA256:
		return man, errors.New("the store entry differs from the manifest")
	}
	listed := map[string]bool{}
	for _, name := range man.Files {
		if listed[name] {
			return man, fmt.Errorf("the manifest lists %q twice", name)
		}
		if _, ok := fileSums[name]; !ok {
			return man, fmt.Errorf("the manifest lists %q, which the archive does not hold", name)
		}
		listed[name] = true
	}
	for name, sum := range fileSums {
		switch want, ok := man.FileSHA256[name]; {
		case !listed[name]:
			return man, fmt.Errorf("entry %q is not in the manifest", name)
		case ok && want != sum, !ok && man.FileSHA256 != nil:
			return man, fmt.Errorf("entry %q differs from the manifest", name)
		}
	}
	for name := range man.FileSHA256 {
		if !listed[name] {
			return man, fmt.Errorf("the manifest gives a checksum of %q, which the archive does not hold", name)
		}
	}
	if want != nil && !want.same(man) {
		return man, errors.New("the archive changed while it was read")
	}
	return man, nil
}

// allows checks an entry's header against the manifest m of a first pass
// (nil: no first pass): the store entry must have the size m gives, any
// other file but the manifest must be one m lists.
func (m *manifest) allows(h *tar.Header) error {
	switch {
	case m == nil || h.Name == manifestEntry:
	case h.Name == storeEntry && h.Size != m.StoreBytes:
		return fmt.Errorf("entry %q has %d bytes, the manifest says %d", h.Name, h.Size, m.StoreBytes)
	case h.Name != storeEntry && !slices.Contains(m.Files, h.Name):
		return fmt.Errorf("entry %q is not in the manifest", h.Name)
	}
	return nil
}

// same reports whether two manifests declare the same content.
func (m *manifest) same(o manifest) bool {
	return m.Created.Equal(o.Created) && slices.Equal(m.Files, o.Files) && m.StoreBytes == o.StoreBytes &&
		m.StoreSHA256 == o.StoreSHA256 && maps.Equal(m.FileSHA256, o.FileSHA256)
}

func allowedEntry(name string) bool {
	if name == storeEntry || name == manifestEntry {
		return true
	}
	for _, f := range backupFiles {
		if name == f {
			return true
		}
	}
	return false
}

// restoreCommand: licensing-server restore -data NEWDIR FILE.
func (m *Main) restoreCommand(args []string) error {
	fs := flag.NewFlagSet("licensing-server restore", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	data := fs.String("data", "", "state directory to create; must not exist or be empty")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *data == "" || fs.NArg() != 1 {
		return usageError{errors.New("usage: licensing-server restore -data NEWDIR FILE")}
	}
	if restoreStore == nil {
		return errors.New("restore: this build's file store cannot restore a backup")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("restore: %s is not a regular file: restore reads the archive twice (to check it, then to write it); save it to a file first", fs.Arg(0))
	}
	if entries, err := os.ReadDir(*data); err == nil && len(entries) > 0 {
		return fmt.Errorf("restore: %s is not empty", *data)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// First the whole archive is checked against its manifest (its last
	// entry), writing nothing, not even the directory; then it is read
	// again and written, each entry checked against that manifest before a
	// byte of it is written.
	want, err := checkArchive(f, fi.Size())
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return err
	}
	marker := filepath.Join(*data, restoreMarker)
	if err := atomicfile.Write(marker, []byte("restore in progress\n")); err != nil {
		cleanDir(*data)
		return fmt.Errorf("restore: %w", err)
	}
	man, err := readArchive(f, fi.Size(), &want, func(name string, r io.Reader) error {
		if name == storeEntry {
			return restoreStore(r, filepath.Join(*data, storeEntry))
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return atomicfile.Write(filepath.Join(*data, name), b)
	})
	if err == nil {
		err = atomicfile.Remove(marker)
	}
	if err != nil {
		cleanDir(*data)
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(m.Stderr, "restored the backup of %s into %s (files %v)\n", man.Created.Format(time.RFC3339), *data, man.Files)
	return nil
}

// cleanDir empties dir, which was empty before a failed restore.
func cleanDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func envOr(getenv func(string) string, name, def string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
