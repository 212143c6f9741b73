// Package filestore is a durable licensing.Store in one directory, using only
// the standard library.
//
// Every write is appended to a log as a checksummed record and fsynced
// before the call returns; concurrent writers share one fsync (group
// commit). Open replays the newest snapshot and the log into memory, so
// lookups never touch the disk. When the log has grown past twice the size
// of the live data (and past Options.CompactMinBytes), it is compacted: a
// snapshot is written to a temporary file, fsynced, renamed into place, the
// directory fsynced, and a fresh log started; a crash at any point leaves a
// directory that opens with all data.
//
// # What Open cuts and what it refuses
//
// Only bytes written after the last completed fsync may be cut at open: an
// append that a crash interrupted, which was never acknowledged. Each
// record's length is covered by its own checksum and each record ends with a
// non-zero byte, so Open cuts the end of the newest log only when the file
// ends inside a record, or when that record's unwritten part and everything
// after it are zero bytes (a file system that grew the file before the data
// landed); it logs a warning when it does. Any other damage, a flipped bit
// anywhere in an acknowledged record, a header or length that does not
// check, damage followed by valid data, any damage to an older log or to a
// snapshot (written whole, fsynced and renamed before it counts), stops Open
// with a *CorruptError naming the file and offset. After a clean Close
// (which leaves the file clean-shutdown: the newest log's name and size)
// nothing was in flight, so Open refuses even the damage a crash could
// explain (zeroed last bytes, a shorter log) instead of cutting it. After a
// crash, zeros over the last records cannot be told from an append that
// never landed without a second fsync per commit, and are cut. Lost files
// are refused too: a log with no snapshot of its generation, a snapshot with
// no log at or before it, the log a clean shutdown named. Files of
// format version 1 (earlier releases) are read and converted to the current
// format at Open.
//
// # Pepper continuity
//
// Keys are found by an HMAC under the service's pepper, so a store opened
// under another pepper would answer "unknown" for every issued key. The
// store records the fingerprint of its pepper durably (licensing.New hands
// it over through Store.CheckPepper; Options.PepperFingerprint does it at
// Open), and another fingerprint is refused with ErrPepperMismatch while
// the store holds a key: licensing.New then refuses to start. A store with
// no recorded fingerprint (a new one, or one written before fingerprints
// existed), or with no key (nothing depends on its pepper), adopts the one
// given.
//
// # Failures, locking, backups
//
// A write or fsync error fails the write that hit it and puts the store in a
// failed state: further writes return an error wrapping
// licensing.ErrStoreFailed (HTTP 503), reads keep working. One process at a
// time: Open takes an exclusive flock on <dir>/LOCK. Store.Backup writes a
// consistent copy of a running store to a stream and Restore turns it back
// into a directory. Backup holds writers only while it opens the files, not
// during the copy, and every write acknowledged before the call is in the
// copy; Restore checks every checksum, refuses a non-empty directory and
// removes what it wrote on error. After a failed write, restart once the disk
// is fixed.
//
// # On disk
//
// The directory (mode 0700; files 0600) holds LOCK, log-<gen>,
// snapshot-<gen>, and clean-shutdown while the store is closed. Every file
// starts with a 16-byte header: "LKSTORE\n", the format version, the file
// kind. A log record is [4-byte length][4-byte CRC-32C of the payload][4-byte
// CRC-32C of those 8 bytes][payload][end byte 0xA5]. One goroutine writes and
// fsyncs whatever writes have gathered, back to back, so 32 concurrent
// creates cost a handful of fsyncs, and a batch of validation records is one
// fsync. A rotation (RotateKey) is one record holding both of its changes,
// the new key and the old key's link and expiry, so a crash leaves all of it
// or none. A key with an expiry or a rotation link is written as a record
// type that releases before key lifetimes do not know: they refuse to open
// such a store rather than read it with its expiries lost; a store that
// never used lifetimes is written as before. Logs written before lifetimes
// open unchanged, and their keys never expire. Instances and seats follow the
// same rule: a key with a MaxInstances, SetMaxInstances, a new seat
// (SeatInstance), a release (ReleaseInstance), a validation batch naming an
// instance (ValidationRecord.InstanceID), a rotation of a key with a limit,
// and a snapshot's list of a key's instances are record types 13 to 19,
// which releases before instances refuse; a store that never used them is
// written as before, and stores written before them open unchanged, without
// limits or instances. A new seat, a release and a limit are each one record,
// fsynced before the call returns, and a seat is decided under its key's lock
// until its record is durable; an update of an instance that already holds a
// seat stays in memory until its validation record is logged (the Service's
// batched RecordValidations), so a crash can lose the last sightings of a
// seat, never the seat. A damaged or torn tail of a format version 1 log is refused (that
// format cannot tell the two apart): open it once with the release that wrote
// it. Torn-tail detection relies on what ext4 (data=ordered, the default) and
// XFS guarantee for appends: a crash can lose, tear or zero-fill the end of a
// file, not leave garbage before data that survived.
//
//	pepper, err := licensing.LoadOrCreatePepper(filepath.Join(dir, "pepper")) // such as /var/lib/licensing
//	if err != nil {
//		return err
//	}
//	st, err := filestore.Open(filepath.Join(dir, "store"), filestore.Options{})
//	if err != nil {
//		return err
//	}
//	defer st.Close()
//	svc, err := licensing.New(licensing.Config{Store: st, Organizations: myOrgs, Pepper: pepper,
//		Policy: licensing.Policy{Issuer: "licensing.example.com"}}) // refuses another pepper's store
package filestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/atomicfile"
	"github.com/licensekit/licensing/internal/bulk"
)

// Options configures a Store; the zero value is usable.
type Options struct {
	// Logger receives the torn-tail warning and compaction messages.
	// Default slog.Default().
	Logger *slog.Logger
	// CompactMinBytes is the log size below which the store never compacts.
	// Default 16 MiB.
	CompactMinBytes int64
	// PepperFingerprint identifies the pepper the caller validates keys
	// with: an opaque string the caller computes from it (for example an
	// HMAC of a fixed label), never the pepper itself. A store records the
	// first fingerprint it is opened with; Open with another one fails with
	// ErrPepperMismatch if the store holds a key, and records the new one
	// if it holds none. Empty skips the check (and records nothing).
	PepperFingerprint string

	wrapFile func(file) file // tests: fault injection on logs and snapshots
}

// ErrPepperMismatch is returned (wrapped) by Open when
// Options.PepperFingerprint differs from the fingerprint the store recorded:
// every key it holds was issued under another pepper and would stop
// validating. Restore the original pepper rather than open the store anyway.
// It wraps licensing.ErrPepperMismatch, like every store's.
var ErrPepperMismatch = fmt.Errorf("filestore: the pepper differs from the one this store's keys were issued under: %w", licensing.ErrPepperMismatch)

// Store is the file-backed licensing.Store. Create it with Open.
type Store struct {
	dir       string
	opt       Options
	lock      *os.File
	mem       *licensing.MemoryStore
	bulk      bulk.Ops[licensing.Key, licensing.Instance] // mem's bulk operations
	events    bulk.EventOps[licensing.Event]              // mem's event log (events.go)
	evmu      sync.Mutex                                  // guards evPending
	evPending []*eventAppend                              // appends waiting to be written (events.go)

	// apply orders writers against compaction: writers hold it shared from
	// appending their record until it is applied in memory; compaction holds
	// it exclusively, so a snapshot is exactly the state the log ends with.
	apply    sync.RWMutex
	log      *logFile
	gen      uint64
	liveSize atomic.Int64 // bytes the live data takes in a snapshot (estimate)
	// done lists the files in charge besides the live log (the snapshot, and
	// older logs a crash left behind): they no longer change.
	done        []string
	fingerprint string // recorded pepper fingerprint, "" when none
	// replayedSeats holds, while Open reads the log, the time at or before
	// which each key's seats forgot its instances (see
	// pruneReplayedSeats); nil afterwards.
	replayedSeats map[string]time.Time
	migrate       bool // a file of format version 1 was read

	mu       sync.Mutex // reservations of ids and lookup values being created
	reserved map[string]bool
	// revoke orders revocations: each checks, logs and applies its record
	// before the next checks, so that of concurrent revocations of a key
	// the one memory keeps (the first) is the one the log replays.
	revoke sync.Mutex
	seats  *seatLocks // seat decisions, per key (instances.go)

	failed     atomic.Pointer[error]
	compacting atomic.Bool
	bg         sync.WaitGroup
	closeOnce  sync.Once
}

var (
	_ licensing.Store = (*Store)(nil)
	_ interface {
		CheckPepper(context.Context, string) error
	} = (*Store)(nil) // asked by licensing.New
)

func logName(gen uint64) string { return fmt.Sprintf("log-%016x", gen) }

// cleanName is the file Close leaves after a clean shutdown: the newest
// log's name and size, so that Open can tell a log that must be whole from
// one whose tail a crash may have torn.
const cleanName = "clean-shutdown"

func snapshotName(gen uint64) string { return fmt.Sprintf("snapshot-%016x", gen) }

// Open opens or creates the store in dir (mode 0700; files 0600) and replays
// it into memory. It fails at once when another process holds the directory.
func Open(dir string, opt Options) (*Store, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.CompactMinBytes <= 0 {
		opt.CompactMinBytes = 16 << 20
	}
	if opt.wrapFile == nil {
		opt.wrapFile = func(f file) file { return f }
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	lockPath := filepath.Join(dir, "LOCK")
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filestore: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("filestore: %s is in use by another process (flock on %s is held)", dir, lockPath)
		}
		return nil, fmt.Errorf("filestore: flock %s: %w", lockPath, err)
	}
	mem := licensing.NewMemoryStore()
	s := &Store{dir: dir, opt: opt, lock: lock, mem: mem, bulk: mem.BulkOps(bulk.Capability{}),
		events: mem.EventOps(bulk.Capability{}), reserved: map[string]bool{}, seats: newSeatLocks()}
	if err := s.load(); err != nil {
		lock.Close()
		return nil, err
	}
	if err := s.afterLoad(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// afterLoad converts files of an older format, then checks or records the
// pepper fingerprint.
func (s *Store) afterLoad() error {
	if s.migrate {
		if err := s.compact(); err != nil {
			return fmt.Errorf("filestore: converting %s to format version %d: %w", s.dir, formatVersion, err)
		}
		s.opt.Logger.Info("filestore: converted the store to the current format", "dir", s.dir, "version", formatVersion)
	}
	fp := s.opt.PepperFingerprint
	if fp == "" {
		return nil
	}
	record, err := s.pepperDecision(fp)
	if !record || err != nil {
		return err
	}
	e := &encoder{}
	encodeFingerprint(e, fp)
	if err := s.log.commit(e.b); err != nil {
		return fmt.Errorf("filestore: record the pepper fingerprint: %w", err)
	}
	s.fingerprint = fp
	return nil
}

// pepperDecision says whether fingerprint fp must be recorded, or refuses
// it: another recorded fingerprint is refused while the store holds a key.
// Callers hold s.apply exclusively (or are Open).
func (s *Store) pepperDecision(fp string) (record bool, err error) {
	switch {
	case fp == s.fingerprint:
		return false, nil
	case s.fingerprint != "" && s.bulk.Len() > 0:
		return false, fmt.Errorf("%w (store %s)", ErrPepperMismatch, s.dir)
	case s.fingerprint != "":
		// No key depends on the recorded pepper: a first start that
		// stopped before its pepper was saved, say.
		s.opt.Logger.Warn("filestore: the store holds no key; adopting the new pepper fingerprint", "dir", s.dir)
	default:
		if n := s.bulk.Len(); n > 0 {
			s.opt.Logger.Info("filestore: recording the pepper fingerprint of a store that had none", "dir", s.dir, "keys", n)
		}
	}
	return true, nil
}

// CheckPepper is the method licensing.New
// calls with its pepper's fingerprint, so that no option is needed: a
// store that records no fingerprint, or that holds no key, records
// fingerprint durably; one that records another fingerprint and holds a
// key returns an error wrapping ErrPepperMismatch. Options.PepperFingerprint
// makes the same check at Open.
func (s *Store) CheckPepper(ctx context.Context, fingerprint string) error {
	if fingerprint == "" {
		return errors.New("filestore: check pepper: empty fingerprint")
	}
	s.apply.Lock() // no write and no compaction meanwhile
	defer s.apply.Unlock()
	record, err := s.pepperDecision(fingerprint)
	if !record || err != nil {
		return err
	}
	if err := s.writable(); err != nil {
		return err
	}
	e := &encoder{}
	encodeFingerprint(e, fingerprint)
	if err := s.commit(e.b); err != nil {
		return err
	}
	s.fingerprint = fingerprint
	return nil
}

// load replays the newest snapshot and the logs after it, cuts a torn tail
// off the newest log, removes files that compaction left behind, and opens
// the newest log for appending.
func (s *Store) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	var snaps, logs []uint64
	for _, e := range entries {
		name := e.Name()
		var gen uint64
		switch {
		case name == restoringName:
			return fmt.Errorf("filestore: %s holds an unfinished restore (%s): remove the directory and restore again", s.dir, name)
		case strings.HasSuffix(name, ".tmp"), strings.HasPrefix(name, ".tmp-"):
			os.Remove(filepath.Join(s.dir, name)) // an unfinished snapshot or marker
		case len(name) == len("log-")+16 && strings.HasPrefix(name, "log-"):
			if _, err := fmt.Sscanf(name, "log-%016x", &gen); err == nil {
				logs = append(logs, gen)
			}
		case len(name) == len("snapshot-")+16 && strings.HasPrefix(name, "snapshot-"):
			if _, err := fmt.Sscanf(name, "snapshot-%016x", &gen); err == nil {
				snaps = append(snaps, gen)
			}
		}
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i] < snaps[j] })
	sort.Slice(logs, func(i, j int) bool { return logs[i] < logs[j] })

	var base uint64
	if len(snaps) > 0 {
		base = snaps[len(snaps)-1]
		path := filepath.Join(s.dir, snapshotName(base))
		if err := s.loadSnapshot(path); err != nil {
			return err
		}
		s.done = append(s.done, path)
	}
	// Compaction makes snapshot N durable before log N, and removes older
	// files only once log N is durable: a log newer than the newest
	// snapshot, or a snapshot with no log at or before it, means files
	// were lost, not a crash.
	var replay []uint64
	for _, g := range logs {
		if g > base {
			return &CorruptError{File: filepath.Join(s.dir, logName(g)), Offset: -1, Reason: fmt.Sprintf("%s is missing: the log has no snapshot to start from", snapshotName(g))}
		}
		if g == base {
			replay = append(replay, g)
		}
	}
	if base > 0 && len(logs) == 0 {
		return &CorruptError{File: filepath.Join(s.dir, logName(base)), Offset: -1, Reason: "the log written after the snapshot is missing"}
	}
	s.gen = base
	var size int64
	cleanLog, cleanSize := readClean(s.dir)
	var cleanGen uint64
	if _, err := fmt.Sscanf(cleanLog, "log-%016x", &cleanGen); err == nil && cleanGen >= base && !slices.Contains(replay, cleanGen) {
		// the log a clean shutdown left is gone (a stale marker names an
		// older generation, which compaction removed)
		return &CorruptError{File: filepath.Join(s.dir, cleanLog), Offset: -1, Reason: "the log the last clean shutdown left is missing"}
	}
	for i, g := range replay {
		path := filepath.Join(s.dir, logName(g))
		last := i == len(replay)-1
		torn := last // a crash can tear only the newest log's tail...
		if last && cleanLog == logName(g) {
			fi, err := os.Stat(path)
			if err != nil {
				return fmt.Errorf("filestore: %w", err)
			}
			switch {
			case fi.Size() < cleanSize:
				return &CorruptError{File: path, Offset: fi.Size(), Reason: fmt.Sprintf("the log is shorter than the %d bytes it had at the last clean shutdown", cleanSize)}
			case fi.Size() == cleanSize:
				torn = false // ...and not after a clean shutdown: every byte was acknowledged
			}
		}
		res, err := scan(path, kindLog, torn, s.replayRecord)
		if err != nil {
			return err
		}
		s.migrate = s.migrate || res.version == 1
		if !last {
			s.done = append(s.done, path)
		}
		s.gen, size = g, res.end
		if res.torn {
			if err := s.cutTail(path, res); err != nil {
				return err
			}
		}
	}
	s.pruneReplayedSeats()
	if len(replay) == 0 || size < headerSize {
		// no log yet for this generation, or one whose header never made it
		if err := s.createLog(s.gen); err != nil {
			return err
		}
		size = headerSize
	}
	// Files of older generations are covered by the snapshot.
	for _, g := range snaps[:max(len(snaps)-1, 0)] {
		os.Remove(filepath.Join(s.dir, snapshotName(g)))
	}
	for _, g := range logs {
		if g < base {
			os.Remove(filepath.Join(s.dir, logName(g)))
		}
	}
	os.Remove(filepath.Join(s.dir, cleanName)) // the log grows from here on
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, logName(s.gen)), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	s.log = newLogFile(s.opt.wrapFile(f), size)
	return nil
}

func (s *Store) cutTail(path string, res scanResult) error {
	if res.end < headerSize {
		return nil // createLog rewrites it
	}
	s.opt.Logger.Warn("filestore: cut off an incomplete record at the end of the log (crash during a write)",
		"file", path, "offset", res.end, "bytes", res.size-res.end)
	f, err := os.OpenFile(path, os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(res.end); err != nil {
		return fmt.Errorf("filestore: truncate %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("filestore: sync %s: %w", path, err)
	}
	return nil
}

func (s *Store) loadSnapshot(path string) error {
	var keys int64
	ended := false
	var batch []licensing.Key
	flush := func() error {
		err := s.bulk.Load(batch...)
		batch = batch[:0]
		return err
	}
	res, err := scan(path, kindSnapshot, false, func(off int64, p []byte) error {
		if ended {
			return errors.New("record after the end of the snapshot")
		}
		d := newDecoder(p)
		if off == headerSize {
			if p[0] != recSnapshotBegin {
				return errors.New("snapshot does not start with its key count")
			}
			n := int(min(d.uvarint(), 1<<30))
			s.bulk.Reserve(n + 1024)
			batch = make([]licensing.Key, 0, min(n, 4096)+1)
			return d.err
		}
		switch p[0] {
		case recFingerprint:
			s.fingerprint = strings.Clone(d.str())
			return d.err
		case recKey, recKeyLifetime, recKeyInstances:
			k := decodeKey(d, p[0])
			if d.err != nil {
				return d.err
			}
			batch = append(batch, k)
			keys++
			if len(batch) == cap(batch) {
				return flush()
			}
		case recEvents, recEventSeq:
			return s.replayEvents(p)
		case recInstances: // after the keys
			keyID, list := decodeInstances(d)
			if d.err != nil {
				return d.err
			}
			if err := flush(); err != nil {
				return err
			}
			return s.bulk.LoadInstances(keyID, list)
		case recSnapshotEnd:
			n := d.uvarint()
			if d.err != nil || int64(n) != keys {
				return fmt.Errorf("snapshot says %d keys, read %d", n, keys)
			}
			ended = true
			return flush()
		default:
			return fmt.Errorf("unknown record type %d in a snapshot", p[0])
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !ended {
		return &CorruptError{File: path, Offset: -1, Reason: "snapshot has no end record"}
	}
	s.migrate = s.migrate || res.version == 1
	fi, err := os.Stat(path)
	if err == nil {
		s.liveSize.Store(fi.Size())
	}
	return nil
}

func (s *Store) replayRecord(off int64, p []byte) error {
	d := newDecoder(p)
	ctx := context.Background()
	switch p[0] {
	case recFingerprint:
		s.fingerprint = strings.Clone(d.str())
		return d.err
	case recKey, recKeyLifetime, recKeyInstances:
		k := decodeKey(d, p[0])
		if d.err != nil {
			return d.err
		}
		if err := s.mem.CreateKey(ctx, k); err != nil {
			return fmt.Errorf("key %s: %w", k.ID, err)
		}
		s.liveSize.Add(int64(len(p) + frameSize))
	case recExpiry:
		id, at := d.str(), d.time()
		if d.err != nil {
			return d.err
		}
		if _, err := s.mem.SetKeyExpiry(ctx, id, at); err != nil {
			return fmt.Errorf("expiry of %s: %w", id, err)
		}
	case recRotate, recRotateInstances:
		oldID, oldExpiresAt, newKey := decodeRotate(d, p[0] == recRotateInstances)
		if d.err != nil {
			return d.err
		}
		// Writers of lifetime records hold s.apply exclusively, so the
		// log has them in the order memory applied them: the checks and
		// copies give here what they gave then.
		if _, err := s.mem.RotateKey(ctx, oldID, newKey, oldExpiresAt); err != nil {
			return fmt.Errorf("rotation of %s to %s: %w", oldID, newKey.ID, err)
		}
		s.liveSize.Add(int64(len(p) + frameSize))
	case recRevoke:
		id, at := d.str(), d.time()
		if d.err != nil {
			return d.err
		}
		if _, err := s.mem.RevokeKey(ctx, id, at); err != nil {
			return fmt.Errorf("revoke %s: %w", id, err)
		}
	case recEvents, recPruneEvents:
		if err := s.replayEvents(p); err != nil {
			return err
		}
		if p[0] == recEvents {
			s.liveSize.Add(int64(len(p) + frameSize))
		}
	case recValidations, recValidationsInstances:
		recs := decodeValidations(d, p[0] == recValidationsInstances)
		if d.err != nil {
			return d.err
		}
		return s.mem.RecordValidations(ctx, recs)
	case recMaxInstances, recSeat, recRelease:
		return s.replayInstanceRecord(p)
	default:
		return fmt.Errorf("unknown record type %d", p[0])
	}
	return nil
}

// createLog writes a fresh log of generation gen holding only its header.
func (s *Store) createLog(gen uint64) error {
	path := filepath.Join(s.dir, logName(gen))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	if _, err := f.Write(header(kindLog)); err != nil {
		f.Close()
		return fmt.Errorf("filestore: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("filestore: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Err returns the cause of the failed state, or nil while the store accepts writes.
func (s *Store) Err() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Store) writable() error {
	if err := s.Err(); err != nil {
		return fmt.Errorf("filestore: %w: %v", licensing.ErrStoreFailed, err)
	}
	return nil
}

// fail puts the store in the failed state (the first cause wins) and returns
// the error for the write that hit it.
func (s *Store) fail(cause error) error {
	s.failed.CompareAndSwap(nil, &cause)
	s.opt.Logger.Error("filestore: write failed; refusing further writes", "dir", s.dir, "err", cause)
	return s.writable()
}

// commit makes payloads durable and then starts a compaction if the log has
// grown enough. Callers hold s.apply shared.
func (s *Store) commit(payloads ...[]byte) error {
	if err := s.log.commit(payloads...); err != nil {
		return s.fail(err)
	}
	size, _ := s.log.stats()
	if size > s.opt.CompactMinBytes && size > 2*s.liveSize.Load() && s.compacting.CompareAndSwap(false, true) {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			defer s.compacting.Store(false)
			s.compact() // logged: a background compaction has no caller to tell
		}()
	}
	return nil
}

// CreateKey implements licensing.Store: the key is fsynced before it returns.
func (s *Store) CreateKey(ctx context.Context, k licensing.Key) error {
	if !licensing.ValidKeyID(k.ID) {
		return licensing.ErrInvalidKeyID
	}
	if !licensing.ValidExpiry(k.ExpiresAt) {
		return licensing.ErrInvalidExpiry // the codec could not read it back
	}
	if k.MaxInstances < 0 || k.MaxInstances > licensing.MaxInstancesLimit {
		return licensing.ErrInvalidMaxInstances
	}
	if err := s.writable(); err != nil {
		return err
	}
	release, err := s.reserve(ctx, k)
	if err != nil {
		return err
	}
	defer release()

	e := &encoder{b: make([]byte, 0, 256)}
	encodeKey(e, k)
	s.apply.RLock()
	defer s.apply.RUnlock()
	if err := s.commit(e.b); err != nil {
		return err
	}
	s.liveSize.Add(int64(len(e.b) + frameSize))
	// Not ctx: the key is durable, memory must have it whatever the caller's
	// context does now.
	return s.mem.CreateKey(context.Background(), k)
}

// reserve claims k's id and lookup value for a write that adds k, or
// returns ErrDuplicateKey when another key or write has either. It
// reserves first, under s.mu alone (no lookup is made while holding it),
// then looks in memory: a write adding the same id or lookup value either
// still holds its reservation, or applied its key to memory before
// releasing it. The caller calls release once k is in memory or refused.
func (s *Store) reserve(ctx context.Context, k licensing.Key) (release func(), err error) {
	idKey, lookupKey := "i"+k.ID, "l"+k.LookupValue
	s.mu.Lock()
	if s.reserved[idKey] || s.reserved[lookupKey] {
		s.mu.Unlock()
		return nil, licensing.ErrDuplicateKey
	}
	s.reserved[idKey], s.reserved[lookupKey] = true, true
	s.mu.Unlock()
	release = func() {
		s.mu.Lock()
		delete(s.reserved, idKey)
		delete(s.reserved, lookupKey)
		s.mu.Unlock()
	}
	if _, err := s.mem.KeyByID(ctx, k.ID); err == nil {
		release()
		return nil, licensing.ErrDuplicateKey
	}
	if _, err := s.mem.KeyByLookup(ctx, k.LookupValue); err == nil {
		release()
		return nil, licensing.ErrDuplicateKey
	}
	return release, nil
}

// KeyByID implements licensing.Store from memory.
func (s *Store) KeyByID(ctx context.Context, id string) (licensing.Key, error) {
	return s.mem.KeyByID(ctx, id)
}

// KeyByLookup implements licensing.Store from memory.
func (s *Store) KeyByLookup(ctx context.Context, lookup string) (licensing.Key, error) {
	return s.mem.KeyByLookup(ctx, lookup)
}

// ListKeys implements licensing.Store from memory.
func (s *Store) ListKeys(ctx context.Context, orgID string, after licensing.KeyCursor, limit int) ([]licensing.Key, error) {
	return s.mem.ListKeys(ctx, orgID, after, limit)
}

// RevokeKey implements licensing.Store: the revocation is fsynced before it returns.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) (licensing.Key, error) {
	if err := s.writable(); err != nil {
		return licensing.Key{}, err
	}
	s.revoke.Lock()
	defer s.revoke.Unlock()
	s.apply.RLock()
	defer s.apply.RUnlock()
	k, err := s.mem.KeyByID(ctx, id)
	if err != nil {
		return licensing.Key{}, err
	}
	if !k.Active {
		return k, nil
	}
	e := &encoder{}
	encodeRevoke(e, id, at)
	if err := s.commit(e.b); err != nil {
		return licensing.Key{}, err
	}
	return s.mem.RevokeKey(ctx, id, at)
}

// batchRecords bounds one validations record (well under maxRecordBytes
// with every field at its limit); a larger batch is written as several
// records with one fsync.
const batchRecords = 2048

// RecordValidations implements licensing.Store: one fsync for the batch.
func (s *Store) RecordValidations(ctx context.Context, recs []licensing.ValidationRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.writable(); err != nil {
		return err
	}
	s.apply.RLock()
	defer s.apply.RUnlock()
	var payloads [][]byte
	for start := 0; start < len(recs); start += batchRecords {
		e := &encoder{}
		encodeValidations(e, recs[start:min(start+batchRecords, len(recs))])
		payloads = append(payloads, e.b)
	}
	if err := s.commit(payloads...); err != nil {
		return err
	}
	return s.mem.RecordValidations(ctx, recs)
}

// compact writes a snapshot of generation gen+1 and starts its log. Errors
// before the snapshot is renamed into place leave the old files in charge;
// errors after it fail the store, since the old log no longer counts. It
// returns the error it hit, which it has also logged.
func (s *Store) compact() error {
	s.apply.Lock()
	defer s.apply.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	start := time.Now()
	next := s.gen + 1
	final := filepath.Join(s.dir, snapshotName(next))
	size, renamed, err := s.writeSnapshot(final)
	if err != nil && renamed {
		// The snapshot is in place: the current log no longer counts at
		// Open, so nothing more may be acknowledged on it.
		return s.fail(fmt.Errorf("compaction: after the snapshot was renamed into place: %w", err))
	}
	if err != nil {
		s.opt.Logger.Error("filestore: compaction failed; keeping the current log", "err", err)
		// Do not retry at once: wait until the log doubles again.
		size, _ := s.log.stats()
		s.liveSize.Store(size)
		return fmt.Errorf("filestore: compaction: write snapshot: %w", err)
	}
	if err := s.createLog(next); err != nil {
		return s.fail(err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, logName(next)), os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return s.fail(err)
	}
	old, oldGen, oldDone := s.log, s.gen, s.done
	s.log, s.gen, s.done = newLogFile(s.opt.wrapFile(f), headerSize), next, []string{final}
	s.liveSize.Store(size)
	old.close()
	os.Remove(filepath.Join(s.dir, logName(oldGen)))
	for _, path := range oldDone {
		os.Remove(path)
	}
	syncDir(s.dir)
	s.opt.Logger.Info("filestore: compacted", "keys", s.bulk.Len(), "snapshot_bytes", size,
		"duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// writeSnapshot writes every key to path through a synced temporary file and
// a rename, then syncs the directory. It returns the snapshot's size, and
// whether the snapshot is in place (renamed), which an error after the
// rename does not undo.
func (s *Store) writeSnapshot(path string) (size int64, renamed bool, err error) {
	tmp := path + ".tmp"
	osf, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, false, err
	}
	defer os.Remove(tmp)
	f := s.opt.wrapFile(osf)
	w := bufio.NewWriterSize(f, 1<<20)
	size = int64(headerSize)
	w.Write(header(kindSnapshot))
	var frame []byte
	e := &encoder{}
	e.byte(recSnapshotBegin)
	e.uvarint(uint64(s.bulk.Len())) // apply is held: no writer changes the count
	frame = appendFrame(frame, e.b)
	w.Write(frame)
	size += int64(len(frame))
	if s.fingerprint != "" {
		e.b = e.b[:0]
		encodeFingerprint(e, s.fingerprint)
		frame = appendFrame(frame[:0], e.b)
		w.Write(frame)
		size += int64(len(frame))
	}
	var n uint64
	s.bulk.Each(func(k licensing.Key) bool {
		e.b = e.b[:0]
		encodeKey(e, k)
		frame = appendFrame(frame[:0], e.b)
		w.Write(frame)
		size += int64(len(frame))
		n++
		return true
	})
	s.writeSnapshotEvents(func(payload []byte) {
		frame = appendFrame(frame[:0], payload)
		w.Write(frame)
		size += int64(len(frame))
	})
	s.bulk.EachInstances(func(keyID string, list []licensing.Instance) bool {
		e.b = e.b[:0]
		encodeInstances(e, keyID, list)
		frame = appendFrame(frame[:0], e.b)
		w.Write(frame)
		size += int64(len(frame))
		return true
	})
	e.b = e.b[:0]
	e.byte(recSnapshotEnd)
	e.uvarint(n)
	frame = appendFrame(frame[:0], e.b)
	w.Write(frame)
	size += int64(len(frame))
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, false, err
	}
	if err := f.Close(); err != nil {
		return 0, false, err
	}
	if err := os.Rename(tmp, path); err != nil {
		_, statErr := os.Stat(path)
		return 0, statErr == nil, err // a failed rename that happened anyway counts as done
	}
	if err := syncDir(s.dir); err != nil {
		return 0, true, err
	}
	return size, true, nil
}

// Compact compacts the store now, whatever the log's size, and returns the
// error it hit. An error before the new snapshot is in place leaves the
// store as it was, writable; an error after it puts the store in its failed
// state.
func (s *Store) Compact() error {
	return s.compact()
}

// Close waits for a running compaction, closes the log and releases the
// directory lock. The store must not be used afterwards.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.bg.Wait()
		s.apply.Lock()
		defer s.apply.Unlock()
		err = s.log.close()
		if err == nil && s.Err() == nil {
			// Everything is durable: say how long the log is, so that the
			// next Open refuses any damage to it rather than cut a tail.
			size, _ := s.log.stats()
			err = atomicfile.Write(filepath.Join(s.dir, cleanName), fmt.Appendf(nil, "%s %d\n", logName(s.gen), size))
		}
		s.lock.Close()
	})
	return err
}

// readClean returns the log name and size recorded by the last clean
// shutdown, or "" when there was none (a crash, or a marker that does not
// parse: it only ever makes Open stricter).
func readClean(dir string) (string, int64) {
	b, err := os.ReadFile(filepath.Join(dir, cleanName))
	if err != nil {
		return "", 0
	}
	var name string
	var size int64
	if n, err := fmt.Sscanf(string(b), "%s %d\n", &name, &size); err != nil || n != 2 || size < headerSize {
		return "", 0
	}
	return name, size
}
