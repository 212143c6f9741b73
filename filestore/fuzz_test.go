package filestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing"
)

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
// validation batches, revokes, an expiry and a rotation in the log, or
// compacted into a snapshot.
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
		if err := s.CreateKey(ctx, k); err != nil {
			f.Fatal(err)
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
