package filestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/storetest"
	"github.com/matryer/is"
)

// mixedStore leaves in dir a snapshot (after a compaction) and a live log of
// creates, rotations, expiries, revokes and validation batches, every one
// acknowledged, and returns the dump of what it holds.
func mixedStore(t *testing.T, dir string) string {
	t.Helper()
	s := open(t, dir, Options{})
	keys := fill(t, s, 6)
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, fill(t, s, 4)...)
	var recs []licensing.ValidationRecord
	for i, k := range keys[:5] {
		recs = append(recs, licensing.ValidationRecord{KeyID: k.ID, FirstAt: base, At: base.Add(time.Duration(i) * time.Minute),
			InstanceName: "renamed", Metrics: map[string]float64{"userCount": 7}})
	}
	if err := s.RecordValidations(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateKey(ctx, keys[7].ID, storetest.NewKey("org-1", base), base.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetKeyExpiry(ctx, keys[1].ID, base.Add(6*time.Hour)); err != nil { // a key of the snapshot
		t.Fatal(err)
	}
	if _, err := s.RevokeKey(ctx, keys[0].ID, base.Add(3*time.Hour)); err != nil { // revoked in the snapshot's generation
		t.Fatal(err)
	}
	want := dump(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return want
}

// Every single flipped bit of an acknowledged log or snapshot either stops
// Open with a CorruptError naming the file and the damaged record, or opens
// a store holding everything: never a store with fewer acknowledged records
// (a revoked key active again, a key or a validation lost).
func TestEveryFlippedBitIsCorruptionNeverATornTail(t *testing.T) {
	dir := t.TempDir()
	want := mixedStore(t, dir)
	for _, name := range []string{logName(1), snapshotName(1)} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(dir, name)
			orig, err := os.ReadFile(path)
			is.NoErr(err)
			records := 0
			if name == logName(1) {
				_, err = scan(path, kindLog, false, func(int64, []byte) error { records++; return nil })
				is.NoErr(err)
				is.True(records >= 8) // creates, revokes and a validation batch
			}
			refused, opened := 0, 0
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			is.NoErr(err)
			defer f.Close()
			for bit := 0; bit < 8*len(orig); bit++ {
				// in place: a failed Open changes nothing, and rewriting
				// the whole file would flush it each time
				_, err := f.WriteAt([]byte{orig[bit/8] ^ 1<<(bit%8)}, int64(bit/8))
				is.NoErr(err)
				s, err := Open(dir, Options{Logger: quiet()})
				_, werr := f.WriteAt(orig[bit/8:bit/8+1], int64(bit/8))
				is.NoErr(werr)
				if err == nil {
					got := dump(s)
					s.Close()
					is.NoErr(os.WriteFile(path, orig, 0o600))
					opened++
					if got != want {
						t.Fatalf("bit %d (byte %d) of %s: opened with other contents:\n%s\nwant:\n%s", bit, bit/8, name, got, want)
					}
					continue
				}
				refused++
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("bit %d of %s: %v, want a CorruptError", bit, name, err)
				}
				is.Equal(ce.File, path)            // names the damaged file
				is.True(ce.Offset <= int64(bit/8)) // at or before the flipped byte
				is.True(strings.Contains(err.Error(), path))
			}
			is.NoErr(os.WriteFile(path, orig, 0o600))
			t.Logf("%s: %d bits: %d refused, %d opened with all data", name, 8*len(orig), refused, opened)
			is.Equal(opened, 0) // every byte of a store file is checked
		})
	}
	is := is.New(t)
	s := open(t, dir, Options{})
	is.Equal(dump(s), want) // the undamaged store still opens whole
}

// The old bug: a length field damaged in the middle of the log was taken for
// a torn tail, and the acknowledged records after it were cut.
func TestDamagedLengthInTheMiddleRefuses(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	fill(t, s, 10)
	s.Close()
	path := filepath.Join(dir, logName(0))
	var offs []int64
	_, err := scan(path, kindLog, false, func(off int64, _ []byte) error { offs = append(offs, off); return nil })
	is.NoErr(err)
	b, _ := os.ReadFile(path)
	mid := offs[len(offs)/2]
	binary.BigEndian.PutUint32(b[mid:], 1<<30) // runs past the end of the file
	is.NoErr(os.WriteFile(path, b, 0o600))
	_, err = Open(dir, Options{Logger: quiet()})
	var ce *CorruptError
	is.True(errors.As(err, &ce)) // refused, not cut
	is.Equal(ce.Offset, mid)     // at the damaged record
}

// A crash during the last batch: truncated at every offset inside it, or
// with its unwritten part zero-filled, the store opens with every earlier
// record, and the complete records of the batch or none of them.
func TestInterruptedLastBatchAtEveryOffset(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	fill(t, s, 6)
	before := dump(s)
	// the last batch: three creates written and fsynced together
	var payloads [][]byte
	for i := 0; i < 3; i++ {
		e := &encoder{}
		encodeKey(e, storetest.NewKey("org-batch", base))
		payloads = append(payloads, e.b)
	}
	start, _ := s.log.stats()
	is.NoErr(s.log.commit(payloads...))
	s.Close()
	crashed(t, dir)
	path := filepath.Join(dir, logName(0))
	orig, err := os.ReadFile(path)
	is.NoErr(err)
	for cut := start; cut < int64(len(orig)); cut++ {
		for _, zeros := range []bool{false, true} {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			is.NoErr(err)
			_, err = f.WriteAt(orig, 0)
			is.NoErr(err)
			is.NoErr(f.Truncate(cut))
			if zeros { // the file grew, the data from cut on never landed
				is.NoErr(f.Truncate(int64(len(orig))))
			}
			f.Close()
			s, err := Open(dir, Options{Logger: quiet()})
			if err != nil {
				t.Fatalf("cut at %d (zero-filled %v): %v", cut, zeros, err)
			}
			n := s.bulk.Len()
			got := dump(s)
			s.Close()
			is.True(n >= 6 && n <= 9) // every earlier record, and only whole records of the batch
			for _, line := range strings.Split(before, "\n") {
				if !strings.Contains(got, line) {
					t.Fatalf("cut at %d (zero-filled %v): lost %s", cut, zeros, line)
				}
			}
		}
	}
}

// writeV1 writes a file of format version 1 (earlier releases).
func writeV1(t *testing.T, path string, kind uint32, payloads ...[]byte) {
	t.Helper()
	b := []byte(magic)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, kind)
	for _, p := range payloads {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(p, castagnoli))
		b = append(b, p...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFormatVersion1IsConverted(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	k1, k2 := storetest.NewKey("org-1", base), storetest.NewKey("org-1", base.Add(time.Second))
	enc := func(f func(e *encoder)) []byte { e := &encoder{}; f(e); return e.b }
	writeV1(t, filepath.Join(dir, snapshotName(3)), kindSnapshot,
		enc(func(e *encoder) { e.byte(recSnapshotBegin); e.uvarint(1) }),
		enc(func(e *encoder) { encodeKey(e, k1) }),
		enc(func(e *encoder) { e.byte(recSnapshotEnd); e.uvarint(1) }))
	writeV1(t, filepath.Join(dir, logName(3)), kindLog,
		enc(func(e *encoder) { encodeKey(e, k2) }),
		enc(func(e *encoder) { encodeRevoke(e, k1.ID, base.Add(time.Hour)) }))

	s := open(t, dir, Options{})
	is.Equal(s.bulk.Len(), 2)
	got, err := s.KeyByID(ctx, k1.ID)
	is.NoErr(err)
	is.True(!got.Active) // the version 1 log's revocation is kept
	want := dump(s)
	is.NoErr(s.Close())
	for _, name := range []string{logName(4), snapshotName(4)} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		is.NoErr(err)
		is.Equal(binary.BigEndian.Uint32(b[8:]), uint32(formatVersion)) // converted to the current format
	}
	_, err = os.Stat(filepath.Join(dir, logName(3)))
	is.True(errors.Is(err, os.ErrNotExist)) // and the old files are gone
	s = open(t, dir, Options{})
	is.Equal(dump(s), want)
}

func TestFormatVersion1DamagedTailRefuses(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	e := &encoder{}
	encodeKey(e, storetest.NewKey("org-1", base))
	writeV1(t, filepath.Join(dir, logName(0)), kindLog, e.b, e.b[:len(e.b)-1])
	b, _ := os.ReadFile(filepath.Join(dir, logName(0)))
	is.NoErr(os.WriteFile(filepath.Join(dir, logName(0)), b[:len(b)-5], 0o600))
	_, err := Open(dir, Options{Logger: quiet()})
	var ce *CorruptError
	is.True(errors.As(err, &ce))                                    // a version 1 tail cannot be told from damage
	is.True(strings.Contains(err.Error(), "release that wrote it")) // and the error says what to do
}

func ExampleCorruptError() {
	err := &CorruptError{File: "/var/lib/licensing/store/log-0000000000000000", Offset: 4242, Reason: "record checksum mismatch"}
	fmt.Println(err)
	// Output: filestore: /var/lib/licensing/store/log-0000000000000000: corrupt at offset 4242: record checksum mismatch
}

// A snapshot is written whole, fsynced and renamed before it counts: it
// never has a torn tail, so a short one is refused at every length (its end
// record carries the key count), never cut.
func TestShortSnapshotRefuses(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	mixedStore(t, dir)
	path := filepath.Join(dir, snapshotName(1))
	orig, err := os.ReadFile(path)
	is.NoErr(err)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	is.NoErr(err)
	defer f.Close()
	for cut := int64(0); cut < int64(len(orig)); cut++ {
		_, err := f.WriteAt(orig, 0)
		is.NoErr(err)
		is.NoErr(f.Truncate(cut))
		_, err = Open(dir, Options{Logger: quiet()})
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("snapshot cut at %d: %v, want a CorruptError", cut, err)
		}
		is.Equal(ce.File, path)
	}
	_, err = f.WriteAt(orig, 0)
	is.NoErr(err)
}

// fuzzKey returns a key of org created at t with a random id and lookup
// value (standard library only, so that the file depends on nothing but
// the Store's methods).
func fuzzKey(org string, at time.Time) licensing.Key {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x70 // version 7
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	id := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	return licensing.Key{ID: id, OrganizationID: org, LookupValue: "lookup-" + h, Digest: "digest-" + h,
		MaskedKey: "0123abcd...89abcdef", InstanceName: "instance " + h[:6], Active: true, CreatedAt: at}
}

// maxFuzzFile bounds the fuzzed file, and with it what Open may allocate.
const maxFuzzFile = 256 << 10

// fuzzTemplate is a store directory written by this build: creates,
// validation batches, revokes, an expiry, a rotation, seat limits, seats, a
// release and a validation of an instance in the log, or compacted into a
// snapshot.
// The fuzz targets replace one of its files with the fuzz input, whatever
// the file format of the day, and keep the others (lock, metadata).
type fuzzTemplate struct {
	files  map[string][]byte // name -> content, LOCK excluded
	target string            // the file the input replaces
}

func newFuzzTemplate(f *testing.F, prefix string, compact bool) fuzzTemplate {
	f.Helper()
	dir := f.TempDir()
	s, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)
	for i := range 6 {
		k := fuzzKey([]string{"org-a", "org-b"}[i%2], at.Add(time.Duration(i)*time.Second))
		if i == 1 {
			k.MaxInstances = 3
		}
		if err := s.CreateKey(ctx, k); err != nil {
			f.Fatal(err)
		}
		if i == 2 { // a limit, seats, a release and a validation of an instance
			if _, err := s.SetMaxInstances(ctx, k.ID, 2); err != nil {
				f.Fatal(err)
			}
			for _, id := range []string{"a", "b"} {
				if _, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: id, URL: "https://" + id + ".example",
					LastSeenAt: at, Metrics: map[string]float64{"userCount": 1}}, 2, 72*time.Hour); err != nil {
					f.Fatal(err)
				}
			}
			if err := s.ReleaseInstance(ctx, k.ID, "b"); err != nil {
				f.Fatal(err)
			}
			if err := s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, InstanceID: "a", At: at.Add(time.Hour),
				InstanceName: "prod"}}); err != nil {
				f.Fatal(err)
			}
		}
		if i%2 == 0 {
			if err := s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, FirstAt: at, At: at.Add(time.Hour),
				InstanceName: "prod", InstanceURL: "https://x.example", Metrics: map[string]float64{"userCount": 3},
				Violations: []string{"v"}}}); err != nil {
				f.Fatal(err)
			}
		}
		if i == 3 {
			if _, err := s.RevokeKey(ctx, k.ID, at.Add(2*time.Hour)); err != nil {
				f.Fatal(err)
			}
		}
		if i == 4 {
			if _, err := s.SetKeyExpiry(ctx, k.ID, at.Add(24*time.Hour)); err != nil {
				f.Fatal(err)
			}
			if _, err := s.RotateKey(ctx, k.ID, fuzzKey(k.OrganizationID, at), at.Add(time.Hour)); err != nil {
				f.Fatal(err)
			}
		}
	}
	if compact {
		if err := s.Compact(); err != nil {
			f.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	tpl := fuzzTemplate{files: map[string][]byte{}}
	for _, e := range entries {
		if e.Name() == "LOCK" || e.Name() == cleanName || e.IsDir() { // as after a crash
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		tpl.files[e.Name()] = b
		if strings.HasPrefix(e.Name(), prefix) && e.Name() > tpl.target && len(b) > 0 {
			tpl.target = e.Name()
		}
	}
	if tpl.target == "" {
		f.Fatalf("no %s* file with data in a fresh store directory", prefix)
	}
	good := tpl.files[tpl.target]
	f.Add(good)
	f.Add(append(append([]byte(nil), good...), good[16:]...)) // every record twice: duplicate keys
	f.Add(good[:len(good)-3])                                 // torn tail
	f.Add(append(append([]byte(nil), good...), make([]byte, 100)...))
	for _, off := range []int{0, 8, 15, 16, 19, 24, len(good) / 2, len(good) - 1} {
		if off < len(good) {
			b := append([]byte(nil), good...)
			b[off] ^= 0x10
			f.Add(b)
		}
	}
	f.Add([]byte{})
	return tpl
}

// openFuzzed writes the template with data in place of its target and
// opens it. The checks: no panic; Open fails with an error, or gives a
// store whose every key has a valid id, is found by id and lookup value,
// and is listed in its organization; a write then succeeds, and the
// directory opens again with one key more.
func (tpl fuzzTemplate) openFuzzed(t *testing.T, data []byte) {
	if len(data) > maxFuzzFile {
		return
	}
	dir := fastTempDir(t)
	for name, b := range tpl.files {
		if name == tpl.target {
			b = data
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opt := Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s, err := Open(dir, opt)
	unchanged := bytes.Equal(data, tpl.files[tpl.target])
	if unchanged && err != nil {
		t.Fatalf("the directory as written does not open: %v", err)
	}
	if err != nil {
		if err.Error() == "" {
			t.Fatal("an error without a message")
		}
		return
	}
	n := checkFuzzedStore(t, s)
	if unchanged && n != 7 { // six creates and the new key of a rotation
		t.Fatalf("the directory as written opens with %d keys, want 7", n)
	}
	ctx := context.Background()
	k := fuzzKey("org-new", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatalf("a store that opened refuses a write: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, opt)
	if err != nil {
		t.Fatalf("opened, wrote one key, and cannot open again: %v", err)
	}
	defer s.Close()
	if m := checkFuzzedStore(t, s); m != n+1 {
		t.Fatalf("reopened with %d keys, want %d", m, n+1)
	}
	if _, err := s.KeyByID(ctx, k.ID); err != nil {
		t.Fatalf("the acknowledged write is gone: %v", err)
	}
}

// fastTempDir is a temporary directory on tmpfs when there is one, where
// an fsync costs nothing, so that the fuzzer runs thousands of opens rather
// than a few.
func fastTempDir(t *testing.T) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "filestore-fuzz-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// fuzzOrgs are the organizations of the template's keys and of the key
// written after open. Records are checksummed, so the fuzzer cannot forge
// keys of other organizations; the checks use only the Store's methods, so
// that they hold whatever the store keeps inside.
var fuzzOrgs = []string{"org-a", "org-b", "org-new"}

// checkFuzzedStore checks every key of s and returns how many there are.
func checkFuzzedStore(t *testing.T, s *Store) int {
	ctx := context.Background()
	n := 0
	for _, org := range fuzzOrgs {
		list, err := s.ListKeys(ctx, org, licensing.KeyCursor{}, 0)
		if err != nil {
			t.Fatalf("ListKeys(%q): %v", org, err)
		}
		if !sort.SliceIsSorted(list, func(i, j int) bool {
			return list[i].CreatedAt.After(list[j].CreatedAt) ||
				list[i].CreatedAt.Equal(list[j].CreatedAt) && list[i].ID > list[j].ID
		}) {
			t.Fatalf("ListKeys(%q) is not newest first", org)
		}
		for _, k := range list {
			if k.OrganizationID != org {
				t.Fatalf("ListKeys(%q) holds a key of %q", org, k.OrganizationID)
			}
			if !licensing.ValidKeyID(k.ID) {
				t.Fatalf("a key with id %q", k.ID)
			}
			if got, err := s.KeyByID(ctx, k.ID); err != nil || got.ID != k.ID {
				t.Fatalf("KeyByID(%s): %v", k.ID, err)
			}
			if got, err := s.KeyByLookup(ctx, k.LookupValue); err != nil || got.ID != k.ID {
				t.Fatalf("KeyByLookup of %s: %v", k.ID, err)
			}
		}
		if len(list) > 0 {
			page, err := s.ListKeys(ctx, org, list[0].Cursor(), 1)
			if err != nil || len(list) > 1 && (len(page) != 1 || page[0].ID != list[1].ID) {
				t.Fatalf("ListKeys(%q) after the first key: %v, %v", org, page, err)
			}
		}
		n += len(list)
	}
	return n
}

// FuzzOpenLog opens a store directory whose log is the fuzz input.
func FuzzOpenLog(f *testing.F) {
	tpl := newFuzzTemplate(f, "log-", false)
	f.Fuzz(tpl.openFuzzed)
}

// FuzzOpenSnapshot opens a store directory whose snapshot is the fuzz
// input.
func FuzzOpenSnapshot(f *testing.F) {
	tpl := newFuzzTemplate(f, "snapshot-", true)
	f.Fuzz(tpl.openFuzzed)
}
