package filestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/storetest"
)

var (
	ctx  = context.Background()
	base = time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t testing.TB, dir string, opt Options) *Store {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = quiet()
	}
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) licensing.Store { return open(t, t.TempDir(), Options{}) })
}

// dump lists every key of s, and every instance it holds, in a stable
// text form.
func dump(s *Store) string {
	var lines []string
	s.bulk.Each(func(k licensing.Key) bool {
		lines = append(lines, fmt.Sprintf("%s %s %s %v %v %v %v %v %s %v %v expires=%v to=%s from=%s max=%d", k.ID, k.OrganizationID, k.LookupValue,
			k.Active, k.CreatedAt.UnixNano(), k.ActivatedAt.UnixNano(), k.LastValidatedAt.UnixNano(), k.RevokedAt.UnixNano(),
			k.InstanceURL, k.LastMetrics, k.LastViolations, k.ExpiresAt.UnixNano(), k.RotatedTo, k.RotatedFrom, k.MaxInstances))
		return true
	})
	s.bulk.EachInstances(func(keyID string, list []licensing.Instance) bool {
		for _, in := range list {
			lines = append(lines, fmt.Sprintf("%s instance %q %q %q first=%v last=%v %v", keyID, in.ID, in.Name, in.URL,
				in.FirstSeenAt.UnixNano(), in.LastSeenAt.UnixNano(), in.Metrics))
		}
		return true
	})
	slicesSort(lines)
	return strings.Join(lines, "\n")
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// lease is the instance lease of the tests' seats.
const lease = 72 * time.Hour

// fill writes n keys and a mix of creates, rotations, expiries,
// validations, revocations, seat limits, seats, releases and validations
// of instances (every one durable: no update of a known instance that only
// memory holds).
func fill(t testing.TB, s *Store, n int) []licensing.Key {
	t.Helper()
	var keys []licensing.Key
	for i := 0; i < n; i++ {
		k := storetest.NewKey(fmt.Sprintf("org-%d", i%3), base.Add(time.Duration(i)*time.Second))
		prev := licensing.Key{}
		if i > 0 {
			prev, _ = s.KeyByID(ctx, keys[i-1].ID)
		}
		if i%7 == 5 && prev.Active && prev.RotatedTo == "" { // k replaces the key before it
			if _, err := s.RotateKey(ctx, prev.ID, k, base.Add(time.Duration(i)*time.Hour)); err != nil {
				t.Fatal(err)
			}
			k, _ = s.KeyByID(ctx, k.ID)
		} else {
			if i%4 == 0 {
				k.MaxInstances = 2
			}
			if err := s.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if i%7 == 3 {
			var err error
			if k, err = s.SetKeyExpiry(ctx, k.ID, base.Add(time.Duration(i)*24*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if i%2 == 0 {
			for j, id := range []string{"inst-a", "https://b.example"} {
				in := licensing.Instance{ID: id, Name: fmt.Sprintf("instance %d", j), URL: id,
					LastSeenAt: base.Add(time.Duration(i+j) * time.Minute), Metrics: map[string]float64{"userCount": float64(j)}}
				if _, _, err := s.SeatInstance(ctx, k.ID, in, k.MaxInstances, lease); err != nil {
					t.Fatal(err)
				}
			}
			if i%4 == 2 {
				if err := s.ReleaseInstance(ctx, k.ID, "https://b.example"); err != nil {
					t.Fatal(err)
				}
			}
		}
		if i%6 == 4 {
			var err error
			if k, err = s.SetMaxInstances(ctx, k.ID, 3); err != nil {
				t.Fatal(err)
			}
			err = s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, InstanceID: "inst-a", FirstAt: base,
				At: base.Add(3 * time.Hour), InstanceName: "renamed", Metrics: map[string]float64{"userCount": 9}}})
			if err != nil {
				t.Fatal(err)
			}
			k, _ = s.KeyByID(ctx, k.ID)
		}
		keys = append(keys, k)
		if i%3 == 1 {
			err := s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, FirstAt: base, At: base.Add(time.Hour),
				InstanceURL: "https://x.example", Metrics: map[string]float64{"userCount": float64(i)}, Violations: []string{}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		if i%5 == 2 {
			if _, err := s.RevokeKey(ctx, k.ID, base.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return keys
}

func TestReopenKeepsEverything(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	fill(t, s, 50)
	want := dump(s)
	is.NoErr(s.Close())
	s2 := open(t, dir, Options{})
	is.Equal(dump(s2), want) // every create, validation and revocation is back
	is.Equal(s2.bulk.Len(), 50)
}

func TestFileModesAndHeader(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "store")
	s := open(t, dir, Options{})
	fill(t, s, 3)
	fi, err := os.Stat(dir)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o700))
	for _, name := range []string{"LOCK", logName(0)} {
		fi, err := os.Stat(filepath.Join(dir, name))
		is.NoErr(err)
		is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // data files are private
	}
	b, err := os.ReadFile(filepath.Join(dir, logName(0)))
	is.NoErr(err)
	is.Equal(string(b[:8]), magic)                    // the header names the format
	is.Equal(b[8:12], []byte{0, 0, 0, formatVersion}) // and its version
}

func TestSecondOpenFailsOnLock(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	open(t, dir, Options{})
	_, err := Open(dir, Options{Logger: quiet()})
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "flock")) // the error names the lock
	is.True(strings.Contains(err.Error(), dir))
}

// lastRecordOffsets returns where the last record of the log starts and the file size.
func lastRecordOffset(t testing.TB, path string) (int64, int64) {
	t.Helper()
	var last int64
	res, err := scan(path, kindLog, false, func(off int64, p []byte) error { last = off; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return last, res.size
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	os.MkdirAll(to, 0o700)
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, e.Name()), b, 0o600)
	}
}

func TestTornTailAtEveryOffset(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	fill(t, s, 10)
	before := dump(s)
	last := storetest.NewKey("org-z", base)
	last.LastMetrics = map[string]float64{"companyCount": 4}
	is.NoErr(s.CreateKey(ctx, last))
	is.NoErr(s.Close())
	crashed(t, dir)

	path := filepath.Join(dir, logName(0))
	start, size := lastRecordOffset(t, path)
	for cut := start; cut < size; cut++ {
		d := filepath.Join(t.TempDir(), "c")
		copyDir(t, dir, d)
		is.NoErr(os.Truncate(filepath.Join(d, logName(0)), cut))
		var logs bytes.Buffer
		s2, err := Open(d, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		is.NoErr(err)              // a torn tail never stops the store
		is.Equal(dump(s2), before) // exactly the records before the torn one
		if cut > start {
			is.True(strings.Contains(logs.String(), "level=WARN")) // and says so
		}
		// the cut-off log accepts new writes and reopens cleanly
		is.NoErr(s2.CreateKey(ctx, storetest.NewKey("org-y", base)))
		s2.Close()
		s3, err := Open(d, Options{Logger: quiet()})
		is.NoErr(err)
		is.Equal(s3.bulk.Len(), 11)
		s3.Close()
	}
}

func TestZeroFilledTailIsTorn(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	fill(t, s, 5)
	want := dump(s)
	s.Close()
	crashed(t, dir)
	f, err := os.OpenFile(filepath.Join(dir, logName(0)), os.O_APPEND|os.O_WRONLY, 0o600)
	is.NoErr(err)
	f.Write(make([]byte, 300)) // a crash after the file grew but before data landed
	f.Close()
	s2 := open(t, dir, Options{})
	is.Equal(dump(s2), want)
}

func TestCorruptionBeforeTheTailRefusesToOpen(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	fill(t, s, 10)
	s.Close()
	path := filepath.Join(dir, logName(0))
	b, err := os.ReadFile(path)
	is.NoErr(err)
	b[headerSize+frameSize+3] ^= 0xff // inside the first record
	is.NoErr(os.WriteFile(path, b, 0o600))
	_, err = Open(dir, Options{Logger: quiet()})
	var ce *CorruptError
	is.True(errors.As(err, &ce)) // corruption is an error, never silent loss
	is.Equal(ce.File, path)
	is.Equal(ce.Offset, int64(headerSize))
	is.True(strings.Contains(err.Error(), path))

	// a newer format is refused, not misread
	b[headerSize+frameSize+3] ^= 0xff
	b[11] = 9
	is.NoErr(os.WriteFile(path, b, 0o600))
	_, err = Open(dir, Options{Logger: quiet()})
	is.True(err != nil && strings.Contains(err.Error(), "format version 9"))
}

// gatedFile holds every Sync until gate is closed.
type gatedFile struct {
	file
	gate chan struct{}
}

func (f gatedFile) Sync() error {
	<-f.gate
	return f.file.Sync()
}

func TestGroupCommit(t *testing.T) {
	is := is.New(t)
	gate := make(chan struct{})
	s := open(t, t.TempDir(), Options{wrapFile: func(f file) file { return gatedFile{f, gate} }})
	_, before := s.log.stats()
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.CreateKey(ctx, storetest.NewKey("org-g", base)); err != nil {
				t.Error(err)
			}
		}()
	}
	// The first fsync is held until all 32 creates have appended their
	// record: the 31 that came during it must share the next one.
	for {
		s.log.mu.Lock()
		n := s.log.commits
		s.log.mu.Unlock()
		if n == 32 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	_, after := s.log.stats()
	is.Equal(s.bulk.Len(), 32)
	is.True(after-before <= 2) // one fsync for the first create, one for the 31 that waited
}

func TestValidationBatchIsOneSync(t *testing.T) {
	is := is.New(t)
	s := open(t, t.TempDir(), Options{})
	keys := fill(t, s, 20)
	var recs []licensing.ValidationRecord
	for _, k := range keys {
		recs = append(recs, licensing.ValidationRecord{KeyID: k.ID, At: base.Add(5 * time.Hour)})
	}
	_, before := s.log.stats()
	is.NoErr(s.RecordValidations(ctx, recs))
	_, after := s.log.stats()
	is.Equal(after-before, uint64(1)) // one fsync for the whole batch
}

func TestCompaction(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{CompactMinBytes: 4 << 10})
	keys := fill(t, s, 30)
	for round := 0; round < 40; round++ { // validations grow the log, not the live data
		var recs []licensing.ValidationRecord
		for _, k := range keys {
			recs = append(recs, licensing.ValidationRecord{KeyID: k.ID, At: base.Add(time.Duration(round) * time.Minute),
				Metrics: map[string]float64{"userCount": float64(round)}})
		}
		is.NoErr(s.RecordValidations(ctx, recs))
	}
	s.bg.Wait()
	is.True(s.gen > 0) // compaction ran
	want := dump(s)
	is.NoErr(s.Close())
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	is.Equal(len(names), 4) // LOCK, one snapshot, one log, the clean-shutdown marker: old generations removed
	s2 := open(t, dir, Options{})
	is.Equal(dump(s2), want) // all data after compaction
}

// A crash at any step of compaction leaves a directory that opens with all data.
func TestCompactionCrashPoints(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{})
	fill(t, s, 20)
	want := dump(s)
	s.Close()
	logs := func(d string) string { return filepath.Join(d, logName(0)) }

	tests := []struct {
		name  string
		crash func(t *testing.T, d string) // leaves d as a crash at that step would
	}{
		{"half-written temporary snapshot", func(t *testing.T, d string) {
			os.WriteFile(filepath.Join(d, snapshotName(1)+".tmp"), []byte(magic+"garbage"), 0o600)
		}},
		{"snapshot renamed, no new log yet", func(t *testing.T, d string) {
			s := open(t, d, Options{})
			_, _, err := s.writeSnapshot(filepath.Join(d, snapshotName(1)))
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
		}},
		{"new log created, old files not yet removed", func(t *testing.T, d string) {
			s := open(t, d, Options{})
			s.writeSnapshot(filepath.Join(d, snapshotName(1)))
			s.createLog(1)
			s.Close()
		}},
		{"compaction finished", func(t *testing.T, d string) {
			s := open(t, d, Options{})
			if err := s.Compact(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if _, err := os.Stat(logs(d)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("old log still there")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			d := filepath.Join(t.TempDir(), "c")
			copyDir(t, dir, d)
			tc.crash(t, d)
			s := open(t, d, Options{})
			is.Equal(dump(s), want) // all data
			k := storetest.NewKey("org-after", base)
			is.NoErr(s.CreateKey(ctx, k)) // and writable
			s.Close()
			s = open(t, d, Options{})
			_, err := s.KeyByID(ctx, k.ID)
			is.NoErr(err) // the write after recovery lands in the live log
		})
	}
}

// faultyFile fails Sync once armed.
type faultyFile struct {
	file
	fail *atomic.Bool
}

func (f faultyFile) Sync() error {
	if f.fail.Load() {
		return errors.New("injected fsync failure")
	}
	return f.file.Sync()
}

type orgs struct{}

func (orgs) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	return licensing.Organization{ID: id, OwnerID: "u", Plan: "business", Active: true}, nil
}

func TestSyncFailureFailsTheStore(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	var fail atomic.Bool
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	st := open(t, dir, Options{Logger: logger, wrapFile: func(f file) file { return faultyFile{f, &fail} }})
	svc, err := licensing.New(licensing.Config{Store: st, Organizations: orgs{}, Pepper: bytes.Repeat([]byte{1}, 32), Logger: logger, Policy: licensing.Policy{Issuer: "licensing.test"}})
	is.NoErr(err)
	defer svc.Close(ctx)
	auth := licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
		return licensing.Actor{UserID: "u", OrganizationID: "org-1"}, nil
	})
	srv := httptest.NewServer(licensing.NewHandler(svc, auth, licensing.HandlerConfig{}))
	defer srv.Close()
	post := func() (int, string) {
		res, err := http.Post(srv.URL+"/api/v1/licensing/keys", "application/json", strings.NewReader(`{}`))
		is.NoErr(err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	status, body := post()
	is.Equal(status, 201)
	okKey := body

	fail.Store(true)
	status, body = post()
	is.Equal(status, 503) // the write that hit the fsync error fails
	is.True(!strings.Contains(body, "licenseKey"))
	fail.Store(false)
	status, _ = post()
	is.Equal(status, 503) // and so do later ones: the store refuses writes
	is.True(errors.Is(st.CreateKey(ctx, storetest.NewKey("org-1", base)), licensing.ErrStoreFailed))
	is.True(st.Err() != nil)
	is.True(strings.Contains(logs.String(), "injected fsync failure")) // the cause is logged

	res, err := http.Get(srv.URL + "/api/v1/licensing/keys")
	is.NoErr(err)
	is.Equal(res.StatusCode, 200) // reads keep working
	res.Body.Close()
	keys, err := st.ListKeys(ctx, "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(len(keys), 1) // only the durable key is there
	is.True(strings.Contains(okKey, keys[0].ID))
}

func TestCompactReturnsItsError(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	var fail atomic.Bool
	s := open(t, dir, Options{wrapFile: func(f file) file { return faultyFile{f, &fail} }})
	fill(t, s, 10)
	fail.Store(true) // the snapshot's fsync fails
	err := s.Compact()
	fail.Store(false)
	is.True(err != nil) // the error is returned, not swallowed
	is.True(strings.Contains(err.Error(), "injected fsync failure"))
	is.NoErr(s.Err()) // the old files stay in charge: still writable
	is.Equal(s.gen, uint64(0))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		is.True(!strings.HasPrefix(e.Name(), "snapshot-")) // no half-written snapshot left
	}
	is.NoErr(s.CreateKey(ctx, storetest.NewKey("org-1", base)))
	is.NoErr(s.Compact()) // and a later compaction succeeds
	want := dump(s)
	is.NoErr(s.Close())
	s = open(t, dir, Options{})
	is.Equal(dump(s), want)
	is.Equal(s.bulk.Len(), 11)

	is.True(errors.Is(s.Compact(), nil))
	s.fail(errors.New("disk gone"))
	is.True(errors.Is(s.Compact(), licensing.ErrStoreFailed)) // a failed store does not compact, and says why
}

// Concurrent revocations of one key at different times: the first to
// reach memory keeps its time, and the log must replay to that same time,
// so a reopened store answers what the live one answered.
func TestConcurrentRevocationsReplayAsApplied(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	for round := 0; round < 50; round++ {
		k := storetest.NewKey("org-1", base)
		is.NoErr(s.CreateKey(ctx, k))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := s.RevokeKey(ctx, k.ID, base.Add(time.Duration(i)*time.Minute)); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
	}
	want := dump(s)
	is.NoErr(s.Close())
	s = open(t, dir, Options{})
	is.Equal(dump(s), want) // every key revoked at the time the live store answered
}

// TestReopenKeepsEveryField: keys holding every field, with digests equal
// to and different from their lookup values, empty, unicode and very long
// strings (longer than a chunk of the memory store's arenas), empty and
// non-empty metrics and violations, rotations, expiries and seat limits,
// read back field for field after a reopen that replays the log and after
// one that loads a snapshot.
func TestReopenKeepsEveryField(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	long := strings.Repeat("ü", 1<<20) // 2 MiB
	var ids []string
	add := func(mod func(*licensing.Key)) licensing.Key {
		k := storetest.NewKey("org-1", base.Add(time.Duration(len(ids))*time.Second))
		mod(&k)
		is.NoErr(s.CreateKey(ctx, k))
		ids = append(ids, k.ID)
		return k
	}
	add(func(k *licensing.Key) { k.Digest = k.LookupValue })
	add(func(k *licensing.Key) { k.MaskedKey, k.InstanceName, k.InstanceURL = "", "", "" })
	add(func(k *licensing.Key) { k.LookupValue = "" })
	add(func(k *licensing.Key) {
		k.OrganizationID, k.InstanceName, k.InstanceURL, k.MaskedKey = "組織-ü", "Prod 😀 instance", "https://例え.jp/ü", "üü...😀"
	})
	add(func(k *licensing.Key) {
		k.LookupValue, k.Digest, k.MaskedKey, k.InstanceName, k.InstanceURL = long+"l", long+"d", long+"m", long+"n", long+"u"
		k.OrganizationID = "org-long-" + long[:10]
	})
	add(func(k *licensing.Key) {
		k.MaxInstances, k.ExpiresAt = 3, base.AddDate(1, 0, 0)
		k.LastMetrics, k.LastViolations = map[string]float64{}, []string{}
	})
	rotated := add(func(k *licensing.Key) {
		k.LastMetrics, k.LastViolations = map[string]float64{"users": 2}, []string{"too many"}
	})
	next := storetest.NewKey("org-1", base.Add(time.Hour))
	_, err := s.RotateKey(ctx, rotated.ID, next, base.Add(48*time.Hour))
	is.NoErr(err)
	ids = append(ids, next.ID)
	is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{
		{KeyID: ids[0], FirstAt: base, At: base.Add(time.Minute), InstanceName: "renamed 😀", InstanceURL: long, Violations: []string{}},
		{KeyID: ids[1], FirstAt: base, At: base, Metrics: map[string]float64{"users": 1, "sites": 2}, Violations: []string{"a", "b"}},
	}))
	_, err = s.RevokeKey(ctx, ids[2], base.Add(time.Hour))
	is.NoErr(err)
	var want []licensing.Key
	for _, id := range ids {
		k, err := s.KeyByID(ctx, id)
		is.NoErr(err)
		want = append(want, k)
	}
	same := func(s *Store) {
		t.Helper()
		for i, id := range ids {
			got, err := s.KeyByID(ctx, id)
			is.NoErr(err)
			is.True(storetest.Equal(got, want[i]))                             // every field, as written
			is.Equal(got.LastMetrics == nil, want[i].LastMetrics == nil)       // nil or empty, as written
			is.Equal(got.LastViolations == nil, want[i].LastViolations == nil) // nil or empty, as written
			byLookup, err := s.KeyByLookup(ctx, want[i].LookupValue)
			is.NoErr(err)
			is.Equal(byLookup.ID, id)
		}
	}
	same(s)
	is.NoErr(s.Close())
	s2 := open(t, dir, Options{}) // the log replayed
	same(s2)
	is.NoErr(s2.Compact())
	is.NoErr(s2.Close())
	s3 := open(t, dir, Options{}) // the snapshot loaded
	same(s3)
}
