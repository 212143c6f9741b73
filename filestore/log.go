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

// File layout (format version 2): a 16-byte header (magic, format version,
// file kind), then records of
//
//	[4-byte big-endian payload length n]
//	[4-byte CRC-32C of the payload]
//	[4-byte CRC-32C of the 8 bytes before it]
//	[payload, n bytes]
//	[1 byte recordEnd]
//
// The header checksum makes the length trustworthy before it is used, and
// the non-zero end byte means a file written by this package never ends in a
// zero byte: together they let scan tell an interrupted append (the file ends
// inside a record, or its unwritten part is zeros) from damage to complete
// bytes. Version 1 (an 8-byte [length][CRC] frame, no end byte) is read for
// migration only.
const (
	magic          = "LKSTORE\n"
	formatVersion  = 2
	kindLog        = 1
	kindSnapshot   = 2
	headerSize     = 16
	recHeader      = 12
	recordEnd      = 0xA5
	frameSize      = recHeader + 1 // bytes a record takes besides its payload
	maxRecordBytes = 64 << 20

	v1Frame = 8 // format version 1: [length][CRC-32C of the payload]
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func header(kind uint32) []byte {
	h := make([]byte, 0, headerSize)
	h = append(h, magic...)
	h = binary.BigEndian.AppendUint32(h, formatVersion)
	return binary.BigEndian.AppendUint32(h, kind)
}

func appendFrame(dst, payload []byte) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:start+8], castagnoli))
	dst = append(dst, payload...)
	return append(dst, recordEnd)
}

// CorruptError reports data that cannot be read back: the store refuses to
// open rather than lose what follows it. File is the path of the damaged
// file and Offset the byte offset of the damaged record in it (0 for the
// file header, -1 when the damage has no single place, as a snapshot
// without its end record).
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
	end     int64  // offset after the last good record
	size    int64  // file size
	torn    bool   // bytes after end are an interrupted append, to be cut
	version uint32 // the file's format version
}

// scan reads the records of path, calling fn with each payload.
//
// When allowTorn is set (the newest log), the bytes from the first record
// that does not check to the end of the file are reported as torn, to be
// cut, only if they are what an interrupted append leaves: the file ends
// inside that record (its header is incomplete, or its checksummed length
// runs past the end), or everything from inside that record to the end of
// the file is zero bytes and the zeros reach back over the part that does
// not check. Anything else is a CorruptError: no single flipped bit in a
// complete record can look like either case.
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
	r := bufio.NewReaderSize(f, int(min(1<<20, max(res.size, 16))))
	corrupt := func(off int64, why string) error { return &CorruptError{File: path, Offset: off, Reason: why} }
	// truncated: the file ends inside the record at off.
	truncated := func(off int64, why string) (scanResult, error) {
		if allowTorn {
			res.end, res.torn = off, true
			return res, nil
		}
		return res, corrupt(off, why)
	}
	// zeroed: the record at off does not check; the bytes from limit on are
	// the ones a zero tail must cover for it to be an interrupted append.
	zeroed := func(off, limit int64, why string) (scanResult, error) {
		if allowTorn {
			p, err := zeroTailStart(f, off, res.size)
			if err != nil {
				return res, err
			}
			if p < res.size && p <= limit {
				res.end, res.torn = off, true
				return res, nil
			}
		}
		return res, corrupt(off, why)
	}
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return truncated(0, "incomplete file header")
	}
	if string(h[:8]) != magic {
		return zeroed(0, 0, "not a licensing store file")
	}
	res.version = binary.BigEndian.Uint32(h[8:])
	if res.version != formatVersion && res.version != 1 {
		return res, corrupt(8, fmt.Sprintf("format version %d; this build reads versions 1 and %d", res.version, formatVersion))
	}
	if k := binary.BigEndian.Uint32(h[12:]); k != kind {
		return res, corrupt(12, fmt.Sprintf("file kind %d, want %d", k, kind))
	}
	if res.version == 1 {
		return scanV1(path, r, f, res, allowTorn, fn)
	}
	off := int64(headerSize)
	buf := make([]byte, 0, 4096)
	for off < res.size {
		if res.size-off < recHeader {
			return truncated(off, "incomplete record header")
		}
		var fr [recHeader]byte
		if _, err := io.ReadFull(r, fr[:]); err != nil {
			return res, err
		}
		n := int64(binary.BigEndian.Uint32(fr[:4]))
		sum := binary.BigEndian.Uint32(fr[4:8])
		if crc32.Checksum(fr[:8], castagnoli) != binary.BigEndian.Uint32(fr[8:]) {
			return zeroed(off, off+recHeader-1, "record header checksum mismatch")
		}
		if n == 0 || n > maxRecordBytes {
			return res, corrupt(off, fmt.Sprintf("impossible record length %d", n))
		}
		if off+frameSize+n > res.size {
			return truncated(off, "record runs past the end of the file")
		}
		if cap(buf) < int(n)+1 {
			buf = make([]byte, n+1)
		}
		buf = buf[:n+1]
		if _, err := io.ReadFull(r, buf); err != nil {
			return res, err
		}
		if crc32.Checksum(buf[:n], castagnoli) != sum || buf[n] != recordEnd {
			return zeroed(off, off+frameSize+n-1, "record checksum mismatch")
		}
		if err := fn(off, buf[:n]); err != nil {
			return res, corrupt(off, err.Error())
		}
		off += frameSize + n
		res.end = off
	}
	res.end = off
	return res, nil
}

// scanV1 reads the records of a format version 1 file (for migration). A
// version 1 length is not checksummed, so a damaged length cannot be told
// from a torn record: only a tail shorter than a record header, or of zero
// bytes, is cut; anything else is reported, and the previous release can cut
// it.
func scanV1(path string, r io.Reader, f *os.File, res scanResult, allowTorn bool, fn func(off int64, payload []byte) error) (scanResult, error) {
	off := int64(headerSize)
	buf := make([]byte, 0, 4096)
	bad := func(why string) (scanResult, error) {
		if allowTorn {
			p, err := zeroTailStart(f, off, res.size)
			if err != nil {
				return res, err
			}
			if p == off || res.size-off < v1Frame {
				res.end, res.torn = off, true
				return res, nil
			}
		}
		return res, &CorruptError{File: path, Offset: off, Reason: why +
			" (format version 1 cannot tell a torn record from damage: open the store once with the release that wrote it to cut a torn tail)"}
	}
	for off < res.size {
		if res.size-off < v1Frame {
			return bad("incomplete record header")
		}
		var fr [v1Frame]byte
		if _, err := io.ReadFull(r, fr[:]); err != nil {
			return res, err
		}
		n := int64(binary.BigEndian.Uint32(fr[:4]))
		if n == 0 || n > maxRecordBytes || off+v1Frame+n > res.size {
			return bad(fmt.Sprintf("impossible record length %d", n))
		}
		if cap(buf) < int(n) {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return res, err
		}
		if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(fr[4:]) {
			return bad("checksum mismatch")
		}
		if err := fn(off, buf); err != nil {
			return res, &CorruptError{File: path, Offset: off, Reason: err.Error()}
		}
		off += v1Frame + n
		res.end = off
	}
	return res, nil
}

// zeroTailStart returns where the run of zero bytes that ends the file
// starts, looking no further back than from (size when the last byte is not
// zero).
func zeroTailStart(f *os.File, from, size int64) (int64, error) {
	buf := make([]byte, min(64<<10, max(size-from, 1)))
	end := size
	for end > from {
		start := max(from, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return from, nil
}

// file is what the log writes to; tests wrap it to inject faults.
type file interface {
	io.Writer
	Sync() error
	Close() error
}

// logFile appends framed records and makes them durable with group commit:
// committers append to a shared buffer and wait; one syncer goroutine writes
// and fsyncs whatever has gathered, and starts the next write as soon as an
// fsync returns, so the disk never waits for a committer to be scheduled.
type logFile struct {
	f       file
	mu      sync.Mutex
	buf     []byte // framed records waiting for the next write
	spare   []byte
	pending *batch // the commits in buf
	err     error  // the first write or fsync error; the log is dead after it
	size    int64  // bytes durable on disk
	syncs   uint64 // fsyncs done, for tests and benchmarks
	commits uint64 // commits appended, for tests
	kick    chan struct{}
	quit    chan struct{}
	stopped chan struct{}
}

// batch is the commits that share one write and one fsync.
type batch struct {
	done chan struct{}
	err  error
}

func newLogFile(f file, size int64) *logFile {
	l := &logFile{f: f, size: size, kick: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{})}
	go l.syncer()
	return l
}

// commit appends payloads (one record each) and returns once they are
// durable, or with the write or fsync error that lost them.
func (l *logFile) commit(payloads ...[]byte) error {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return l.err
	}
	for _, p := range payloads {
		l.buf = appendFrame(l.buf, p)
	}
	l.commits++
	b := l.pending
	if b == nil {
		b = &batch{done: make(chan struct{})}
		l.pending = b
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default: // the syncer is already told
	}
	<-b.done
	return b.err
}

func (l *logFile) syncer() {
	defer close(l.stopped)
	for {
		select {
		case <-l.kick:
		case <-l.quit:
			return
		}
		for {
			l.mu.Lock()
			buf, b, err := l.buf, l.pending, l.err
			if b == nil {
				l.mu.Unlock()
				break
			}
			l.buf, l.pending = l.spare[:0], nil
			l.mu.Unlock()
			if err == nil {
				_, err = l.f.Write(buf)
				if err == nil {
					err = l.f.Sync()
				}
			}
			l.mu.Lock()
			l.spare = buf[:0]
			if err != nil {
				if l.err == nil {
					l.err = err
				}
			} else {
				l.size += int64(len(buf))
				l.syncs++
			}
			l.mu.Unlock()
			b.err = err
			close(b.done)
		}
	}
}

func (l *logFile) stats() (size int64, syncs uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.syncs
}

// close fails later commits, stops the syncer once no commit is waiting,
// and closes the file.
func (l *logFile) close() error {
	l.mu.Lock()
	if l.err == nil {
		l.err = errors.New("filestore: log closed")
	}
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}: // fail a batch that is still waiting
	default:
	}
	close(l.quit)
	<-l.stopped
	l.mu.Lock()
	b := l.pending
	l.pending = nil
	l.mu.Unlock()
	if b != nil {
		b.err = errors.New("filestore: log closed")
		close(b.done)
	}
	return l.f.Close()
}
