package filestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A backup stream, all integers big-endian:
//
//	"LKBACKUP" [4-byte backup format version]
//	per file:  [2-byte name length][name][8-byte size][content][SHA-256 of the content]
//	end:       [2 zero bytes][SHA-256 of every byte of the stream before it]
//
// The files are the store's own (a snapshot, logs), so Open checks every
// record of a restored directory again.
const (
	backupMagic   = "LKBACKUP"
	backupVersion = 1
	// restoringName marks a directory whose restore has not finished.
	restoringName = "RESTORING"
)

// Backup writes a consistent, checksummed copy of the store to w: every
// write acknowledged before Backup was called is in it. Writers are held
// only while the files are opened and the log's durable length is noted;
// the copy itself runs while they continue, and a compaction meanwhile does
// not disturb it. Restore turns the stream back into a store directory.
// Backup returns ctx's error if ctx ends first, and works on a store in
// its failed state (it copies what was made durable).
func (s *Store) Backup(ctx context.Context, w io.Writer) error {
	type part struct {
		name string
		f    *os.File
		size int64
	}
	var parts []part
	defer func() {
		for _, p := range parts {
			p.f.Close()
		}
	}()
	// With apply held exclusively no commit is in flight: every
	// acknowledged write is in these files, and the log's durable size ends
	// on a record. Open files survive a later compaction removing them.
	err := func() error {
		s.apply.Lock()
		defer s.apply.Unlock()
		logSize, _ := s.log.stats()
		paths := append(append([]string(nil), s.done...), filepath.Join(s.dir, logName(s.gen)))
		for i, path := range paths {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			size := logSize
			if i < len(paths)-1 {
				fi, err := f.Stat()
				if err != nil {
					f.Close()
					return err
				}
				size = fi.Size()
			}
			parts = append(parts, part{filepath.Base(path), f, size})
		}
		return nil
	}()
	if err != nil {
		return fmt.Errorf("filestore: backup: %w", err)
	}

	total := sha256.New()
	out := io.MultiWriter(w, total)
	head := append([]byte(backupMagic), 0, 0, 0, backupVersion)
	if _, err := out.Write(head); err != nil {
		return fmt.Errorf("filestore: backup: %w", err)
	}
	buf := make([]byte, 1<<20)
	for _, p := range parts {
		var h []byte
		h = binary.BigEndian.AppendUint16(h, uint16(len(p.name)))
		h = append(h, p.name...)
		h = binary.BigEndian.AppendUint64(h, uint64(p.size))
		if _, err := out.Write(h); err != nil {
			return fmt.Errorf("filestore: backup: %w", err)
		}
		sum := sha256.New()
		if err := copyCtx(ctx, io.MultiWriter(out, sum), io.NewSectionReader(p.f, 0, p.size), p.size, buf); err != nil {
			return fmt.Errorf("filestore: backup %s: %w", p.name, err)
		}
		if _, err := out.Write(sum.Sum(nil)); err != nil {
			return fmt.Errorf("filestore: backup: %w", err)
		}
	}
	if _, err := out.Write([]byte{0, 0}); err != nil {
		return fmt.Errorf("filestore: backup: %w", err)
	}
	if _, err := w.Write(total.Sum(nil)); err != nil {
		return fmt.Errorf("filestore: backup: %w", err)
	}
	return nil
}

// copyCtx copies exactly n bytes from r to w, checking ctx between chunks.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader, n int64, buf []byte) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := io.ReadFull(r, buf[:min(int64(len(buf)), n)])
		if m > 0 {
			if _, werr := w.Write(buf[:m]); werr != nil {
				return werr
			}
			n -= int64(m)
		}
		if err != nil && n > 0 {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// Restore reads a stream written by Backup into dir, which must be missing
// or empty (Restore refuses a directory with anything in it). It checks
// every checksum of the stream and writes and fsyncs every file before it
// returns nil; Open(dir) then gives every key, revocation and validation
// record of the backup. On error it removes what it wrote. A restore
// interrupted by a crash leaves a marker file that makes Open refuse the
// directory: remove the directory and restore again.
func Restore(r io.Reader, dir string) (err error) {
	entries, err := os.ReadDir(dir)
	created := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("filestore: restore: %w", err)
		}
		created = true
	case err != nil:
		return fmt.Errorf("filestore: restore: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("filestore: restore: %s is not empty (%s, ...): restore only into an empty or missing directory", dir, entries[0].Name())
	}
	var written []string
	defer func() {
		if err == nil {
			return
		}
		for _, path := range written {
			os.Remove(path)
		}
		if created {
			os.Remove(dir)
		}
		err = fmt.Errorf("filestore: restore: %w", err)
	}()
	marker := filepath.Join(dir, restoringName)
	if err := writeNew(marker, strings.NewReader("restore in progress\n"), nil); err != nil {
		return err
	}
	written = append(written, marker)
	if err := syncDir(dir); err != nil {
		return err
	}

	total := sha256.New()
	in := io.TeeReader(r, total)
	head := make([]byte, len(backupMagic)+4)
	if _, err := io.ReadFull(in, head); err != nil {
		return fmt.Errorf("not a store backup: %w", err)
	}
	if string(head[:len(backupMagic)]) != backupMagic {
		return errors.New("not a store backup")
	}
	if v := binary.BigEndian.Uint32(head[len(backupMagic):]); v != backupVersion {
		return fmt.Errorf("backup format version %d; this build reads version %d", v, backupVersion)
	}
	logs := 0
	for {
		var n [2]byte
		if _, err := io.ReadFull(in, n[:]); err != nil {
			return fmt.Errorf("backup ends early: %w", err)
		}
		if binary.BigEndian.Uint16(n[:]) == 0 {
			break
		}
		name := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(in, name); err != nil {
			return fmt.Errorf("backup ends early: %w", err)
		}
		if !storeFileName(string(name)) {
			return fmt.Errorf("backup names an unexpected file %q", name)
		}
		if strings.HasPrefix(string(name), "log-") {
			logs++
		}
		var sz [8]byte
		if _, err := io.ReadFull(in, sz[:]); err != nil {
			return fmt.Errorf("backup ends early: %w", err)
		}
		size := binary.BigEndian.Uint64(sz[:])
		if size > 1<<50 {
			return fmt.Errorf("backup gives %s an impossible size %d", name, size)
		}
		path := filepath.Join(dir, string(name))
		sum := sha256.New()
		lr := &io.LimitedReader{R: in, N: int64(size)}
		if err := writeNew(path, lr, sum); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("backup holds %s twice", name)
			}
			return err
		}
		written = append(written, path)
		if lr.N > 0 {
			return fmt.Errorf("backup ends early in %s", name)
		}
		want := make([]byte, sha256.Size)
		if _, err := io.ReadFull(in, want); err != nil {
			return fmt.Errorf("backup ends early: %w", err)
		}
		if !bytes.Equal(sum.Sum(nil), want) {
			return fmt.Errorf("checksum mismatch in %s: the backup is damaged", name)
		}
	}
	got := total.Sum(nil)
	want := make([]byte, sha256.Size)
	if _, err := io.ReadFull(r, want); err != nil {
		return fmt.Errorf("backup ends early: %w", err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("checksum mismatch over the whole backup: it is damaged")
	}
	if logs == 0 {
		return errors.New("backup holds no log")
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.Remove(marker); err != nil {
		return err
	}
	written = written[1:]
	return syncDir(dir)
}

// writeNew creates path (it must not exist), copies r into it (and into
// sum, when given) and fsyncs it.
func writeNew(path string, r io.Reader, sum hash.Hash) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	var w io.Writer = f
	if sum != nil {
		w = io.MultiWriter(f, sum)
	}
	if _, err := io.Copy(w, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// storeFileName reports whether name is a log or snapshot file name.
func storeFileName(name string) bool {
	var hex string
	switch {
	case strings.HasPrefix(name, "log-"):
		hex = name[len("log-"):]
	case strings.HasPrefix(name, "snapshot-"):
		hex = name[len("snapshot-"):]
	default:
		return false
	}
	if len(hex) != 16 {
		return false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
