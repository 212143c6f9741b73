package filestore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
)

// File layout: a 16-byte header (magic, format version, file kind), then
// records of [4-byte big-endian payload length][4-byte CRC-32C of the
// payload][payload].
const (
	magic          = "LKSTORE\n"
	formatVersion  = 1
	kindLog        = 1
	kindSnapshot   = 2
	headerSize     = 16
	frameSize      = 8
	maxRecordBytes = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func header(kind uint32) []byte {
	h := make([]byte, 0, headerSize)
	h = append(h, magic...)
	h = binary.BigEndian.AppendUint32(h, formatVersion)
	return binary.BigEndian.AppendUint32(h, kind)
}

func appendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// CorruptError reports data that cannot be read back: the store refuses to
// open rather than lose what follows it.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("filestore: %s: corrupt at offset %d: %s", e.File, e.Offset, e.Reason)
}

// scanResult says where the readable records of a file end.
type scanResult struct {
	end  int64 // offset after the last good record
	size int64 // file size
	torn bool  // bytes after end are an incomplete last record
}

// scan reads the records of path, calling fn with each payload. When
// allowTorn is set (the newest log), an incomplete last record is reported
// as torn instead of corrupt.
func scan(path string, kind uint32, allowTorn bool, fn func(off int64, payload []byte) error) (scanResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return scanResult{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return scanResult{}, err
	}
	res := scanResult{size: fi.Size()}
	r := bufio.NewReaderSize(f, 1<<20)
	corrupt := func(off int64, why string) error { return &CorruptError{File: path, Offset: off, Reason: why} }
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if allowTorn {
			res.torn = true
			return res, nil
		}
		return res, corrupt(0, "incomplete header")
	}
	if string(h[:8]) != magic {
		return res, corrupt(0, "not a licensing store file")
	}
	if v := binary.BigEndian.Uint32(h[8:]); v != formatVersion {
		return res, corrupt(8, fmt.Sprintf("format version %d; this build reads version %d", v, formatVersion))
	}
	if k := binary.BigEndian.Uint32(h[12:]); k != kind {
		return res, corrupt(12, fmt.Sprintf("file kind %d, want %d", k, kind))
	}
	off := int64(headerSize)
	buf := make([]byte, 0, 4096)
	// tail decides whether a bad record at off is a torn tail or corruption.
	tail := func(why string, reachesEnd bool) (scanResult, error) {
		if allowTorn && (reachesEnd || restIsZero(r)) {
			res.end, res.torn = off, true
			return res, nil
		}
		return res, corrupt(off, why)
	}
	for off < res.size {
		if res.size-off < frameSize {
			return tail("incomplete record header", true)
		}
		var fr [frameSize]byte
		if _, err := io.ReadFull(r, fr[:]); err != nil {
			return res, err
		}
		n := int64(binary.BigEndian.Uint32(fr[:4]))
		sum := binary.BigEndian.Uint32(fr[4:])
		if n == 0 || n > maxRecordBytes {
			return tail(fmt.Sprintf("impossible record length %d", n), off+frameSize+n >= res.size)
		}
		if off+frameSize+n > res.size {
			return tail("record runs past the end of the file", true)
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return res, err
		}
		if crc32.Checksum(buf, castagnoli) != sum {
			return tail("checksum mismatch", off+frameSize+n == res.size)
		}
		if err := fn(off, buf); err != nil {
			return res, corrupt(off, err.Error())
		}
		off += frameSize + n
		res.end = off
	}
	res.end = off
	return res, nil
}

// restIsZero reports whether everything left in r is zero bytes (space a
// file system allocated but never wrote, after a crash).
func restIsZero(r io.Reader) bool {
	var b [4096]byte
	for {
		n, err := r.Read(b[:])
		for _, c := range b[:n] {
			if c != 0 {
				return false
			}
		}
		if err != nil {
			return true
		}
	}
}

// file is what the log writes to; tests wrap it to inject faults.
type file interface {
	io.Writer
	Sync() error
	Close() error
}

// logFile appends framed records and makes them durable with group commit:
// concurrent committers share one write and one fsync.
type logFile struct {
	f        file
	mu       sync.Mutex
	cond     sync.Cond
	buf      []byte // framed records waiting for the next write
	spare    []byte
	appended uint64 // commits appended to buf, ever
	synced   uint64 // commits durable on disk
	syncing  bool
	err      error // the first write or fsync error; the log is dead after it
	size     int64
	syncs    uint64 // fsyncs done, for tests and benchmarks
}

func newLogFile(f file, size int64) *logFile {
	l := &logFile{f: f, size: size}
	l.cond.L = &l.mu
	return l
}

// commit appends payloads (one record each) and returns once they are
// durable, or with the write or fsync error that lost them.
func (l *logFile) commit(payloads ...[]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	for _, p := range payloads {
		l.buf = appendFrame(l.buf, p)
	}
	l.appended++
	me := l.appended
	for l.synced < me && l.err == nil {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		// Lead a group: write and sync everything appended so far.
		l.syncing = true
		buf, upto := l.buf, l.appended
		l.buf = l.spare[:0]
		l.mu.Unlock()
		_, err := l.f.Write(buf)
		if err == nil {
			err = l.f.Sync()
		}
		l.mu.Lock()
		l.syncing = false
		l.spare = buf[:0]
		if err != nil {
			l.err = err
		} else {
			l.synced = upto
			l.size += int64(len(buf))
			l.syncs++
		}
		l.cond.Broadcast()
	}
	if l.synced >= me {
		return nil
	}
	return l.err
}

func (l *logFile) stats() (size int64, syncs uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.syncs
}

func (l *logFile) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = errors.New("filestore: log closed")
	}
	return l.f.Close()
}
