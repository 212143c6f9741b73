package filestore

import (
	"errors"
	"fmt"
	"math/rand/v2"
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

// recordTypes returns the type of every record of the log of generation gen.
func recordTypes(t *testing.T, dir string, gen uint64) []byte {
	t.Helper()
	var types []byte
	if _, err := scan(filepath.Join(dir, logName(gen)), kindLog, false, func(_ int64, p []byte) error {
		types = append(types, p[0])
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return types
}

// Each write of instances is the record it should be, and only a store that
// uses instances has them: a key without MaxInstances and a validation
// batch naming no instance are written as before (the release before
// instances opens such a store), and a validation of an instance that holds
// a seat writes nothing until its validation record.
func TestInstanceRecords(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	plain := storetest.NewKey("org-1", base)
	is.NoErr(s.CreateKey(ctx, plain))
	is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: plain.ID, At: base}}))
	is.Equal(recordTypes(t, dir, 0), []byte{recKey, recValidations}) // as before instances existed

	limited := storetest.NewKey("org-1", base)
	limited.MaxInstances = 2
	is.NoErr(s.CreateKey(ctx, limited))
	_, err := s.SetMaxInstances(ctx, plain.ID, 5)
	is.NoErr(err)
	_, _, err = s.SeatInstance(ctx, plain.ID, licensing.Instance{ID: "a", LastSeenAt: base}, 5, lease)
	is.NoErr(err)
	_, _, err = s.SeatInstance(ctx, plain.ID, licensing.Instance{ID: "a", Name: "known", LastSeenAt: base.Add(time.Minute)}, 5, lease)
	is.NoErr(err) // known: memory only
	_, _, err = s.SeatInstance(ctx, limited.ID, licensing.Instance{ID: "b", LastSeenAt: base}, 2, lease)
	is.NoErr(err)
	_, _, err = s.SeatInstance(ctx, limited.ID, licensing.Instance{ID: "c", LastSeenAt: base}, 1, lease)
	is.True(errors.Is(err, licensing.ErrSeatLimit)) // refused: nothing written
	is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{
		{KeyID: plain.ID, At: base}, {KeyID: plain.ID, InstanceID: "a", At: base.Add(time.Minute), InstanceName: "known"}}))
	is.NoErr(s.ReleaseInstance(ctx, limited.ID, "b"))
	is.True(errors.Is(s.ReleaseInstance(ctx, limited.ID, "b"), licensing.ErrInstanceNotFound)) // nothing written
	_, _, err = s.SeatInstance(ctx, plain.ID, licensing.Instance{LastSeenAt: base}, 5, lease)
	is.True(err != nil && strings.Contains(err.Error(), "no ID")) // an instance without an id is refused, and nothing written
	_, err = s.RotateKey(ctx, limited.ID, storetest.NewKey("org-1", base), base.Add(time.Hour))
	is.NoErr(err)
	_, err = s.RotateKey(ctx, plain.ID, storetest.NewKey("org-1", base), base.Add(time.Hour))
	is.NoErr(err)
	_, err = s.SetMaxInstances(ctx, limited.ID, 0)
	is.NoErr(err)
	want := dump(s)
	is.Equal(recordTypes(t, dir, 0), []byte{recKey, recValidations, recKeyInstances, recMaxInstances, recSeat, recSeat,
		recValidationsInstances, recRelease, recRotateInstances, recRotateInstances, recMaxInstances})
	is.True(strings.Contains(want, `instance "a" "known"`)) // the known instance's update, made durable by its validation record

	is.NoErr(s.Compact())
	is.NoErr(s.Close())
	s = open(t, dir, Options{})
	is.Equal(dump(s), want) // the snapshot keeps MaxInstances and instances
	var types []byte
	_, err = scan(filepath.Join(dir, snapshotName(1)), kindSnapshot, false, func(_ int64, p []byte) error {
		types = append(types, p[0])
		return nil
	})
	is.NoErr(err)
	is.Equal(types[len(types)-2], recInstances)  // instance lists follow the keys
	is.Equal(countOf(types, recInstances), 1)    // one for the one key holding an instance
	is.Equal(countOf(types, recKeyInstances), 3) // the keys with a limit: plain and the two new keys of the rotations
}

func countOf(b []byte, c byte) int {
	n := 0
	for _, x := range b {
		if x == c {
			n++
		}
	}
	return n
}

// testdata/store-before-instances was written by the code of main at
// fc5b45c (before instances and seats) and closed cleanly: a snapshot of
// two keys (one with an expiry), and a log with a create, a rotation, a
// validation and a revocation. It opens unchanged, with no limit and no
// instance, and the instance writes work on it and survive a reopen and a
// compaction.
func TestStoreWrittenBeforeInstancesOpens(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "store")
	copyDir(t, filepath.Join("testdata", "store-before-instances"), dir)
	s := open(t, dir, Options{PepperFingerprint: "fixture-pepper-fingerprint"})
	keys, err := s.ListKeys(ctx, "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(len(keys), 4) // the snapshot's keys and the log's
	for _, k := range keys {
		is.Equal(k.MaxInstances, 0) // no limit of its own
		list, err := s.Instances(ctx, k.ID, base, lease)
		is.NoErr(err)
		is.Equal(len(list), 0) // and no instance
	}
	first, err := s.KeyByLookup(ctx, "lookup-1")
	is.NoErr(err)
	is.Equal(first.RotatedTo, "0193a0b0-0000-7000-8000-000000000004") // the old log's rotation
	second, err := s.KeyByLookup(ctx, "lookup-2")
	is.NoErr(err)
	is.True(!second.ExpiresAt.IsZero())               // the snapshot's expiry
	is.Equal(second.InstanceURL, "https://a.example") // the old log's validation
	third, err := s.KeyByLookup(ctx, "lookup-3")
	is.NoErr(err)
	is.True(!third.Active) // and its revocation

	_, err = s.SetMaxInstances(ctx, second.ID, 1)
	is.NoErr(err)
	_, _, err = s.SeatInstance(ctx, second.ID, licensing.Instance{ID: "a", LastSeenAt: base}, 1, lease)
	is.NoErr(err)
	want := dump(s)
	is.NoErr(s.Close())
	s = open(t, dir, Options{PepperFingerprint: "fixture-pepper-fingerprint"})
	is.Equal(dump(s), want) // instance records appended to the old log are read back
	_, _, err = s.SeatInstance(ctx, second.ID, licensing.Instance{ID: "b", LastSeenAt: base}, 1, lease)
	is.True(errors.Is(err, licensing.ErrSeatLimit)) // the seat taken before the reopen holds
	is.NoErr(s.Compact())
	is.NoErr(s.Close())
	s = open(t, dir, Options{PepperFingerprint: "fixture-pepper-fingerprint"})
	is.Equal(dump(s), want) // and survive a compaction
}

// A crash while a seat's record is written: the log cut at every offset
// inside it, or with its unwritten part zero-filled, opens without the
// seat, which was never acknowledged, and with everything before it; only
// the whole record gives the seat. The same for a release.
func TestInterruptedSeatAtEveryOffset(t *testing.T) {
	for _, what := range []string{"seat", "release"} {
		t.Run(what, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			s := open(t, dir, Options{})
			keys := fill(t, s, 6)
			k := keys[1] // active, no limit
			_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "held", LastSeenAt: base}, 2, lease)
			is.NoErr(err)
			before := dump(s)
			start, _ := s.log.stats()
			if what == "seat" {
				_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "new", Name: "n", URL: "https://new.example",
					LastSeenAt: base.Add(time.Hour), Metrics: map[string]float64{"userCount": 4}}, 2, lease)
			} else {
				err = s.ReleaseInstance(ctx, k.ID, "held")
			}
			is.NoErr(err)
			after := dump(s)
			is.True(after != before)
			checkCutsOfLastWrite(t, s, dir, start, before, after, what)
		})
	}
}

// A new seat whose write or fsync fails returns the error and fails the
// store, and memory does not keep the seat (another instance is not
// refused for it); after a reopen, a seat never acknowledged may be there
// (a failed fsync) or not (a short write, cut), and nothing else changed.
func TestSeatWriteFailure(t *testing.T) {
	tests := []struct {
		name      string
		wrap      func(f file, armed *atomic.Bool) file
		wantWhole bool // the seat is there after reopening
	}{
		{"fsync fails", func(f file, armed *atomic.Bool) file { return faultyFile{f, armed} }, true},
		{"disk full in the middle of the record", func(f file, armed *atomic.Bool) file { return shortWriteFile{f, armed} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			var armed atomic.Bool
			s, err := Open(dir, Options{Logger: quiet(), wrapFile: func(f file) file { return tc.wrap(f, &armed) }})
			is.NoErr(err)
			k := storetest.NewKey("org-1", base)
			k.MaxInstances = 1
			is.NoErr(s.CreateKey(ctx, k))
			before := dump(s)
			armed.Store(true)
			_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: base}, 1, lease)
			armed.Store(false)
			is.True(errors.Is(err, licensing.ErrStoreFailed)) // the seat fails, and says the store failed
			is.Equal(dump(s), before)                         // memory does not keep it
			list, err := s.Instances(ctx, k.ID, base, lease)
			is.NoErr(err)
			is.Equal(len(list), 0)
			_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: base}, 1, lease)
			is.True(errors.Is(err, licensing.ErrStoreFailed)) // a failed store takes no new seat
			s.Close()

			s = open(t, dir, Options{})
			list, err = s.Instances(ctx, k.ID, base, lease)
			is.NoErr(err)
			if !tc.wantWhole {
				is.Equal(dump(s), before) // no seat
				return
			}
			is.Equal(len(list), 1) // the record reached the disk before its fsync failed
			is.Equal(list[0].ID, "a")
		})
	}
}

// An update of an instance that holds a seat is in memory only until its
// validation record: a crash before it loses the update (the instance keeps
// its seat as the log has it), the record makes it durable.
func TestKnownInstanceUpdateIsDurableWithItsValidationRecord(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	k := storetest.NewKey("org-1", base)
	is.NoErr(s.CreateKey(ctx, k))
	_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "first", LastSeenAt: base}, 0, lease)
	is.NoErr(err)
	later := base.Add(time.Hour)
	_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "second", LastSeenAt: later}, 0, lease)
	is.NoErr(err)
	s.Close()
	crashed(t, dir)
	s = open(t, dir, Options{})
	list, err := s.Instances(ctx, k.ID, later, lease)
	is.NoErr(err)
	is.Equal(len(list), 1) // the seat is durable
	is.Equal(list[0].Name, "first")
	is.True(list[0].LastSeenAt.Equal(base)) // the update was not

	_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "second", LastSeenAt: later}, 0, lease)
	is.NoErr(err)
	is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, InstanceID: "a", At: later, InstanceName: "second"}}))
	s.Close()
	crashed(t, dir)
	s = open(t, dir, Options{})
	list, err = s.Instances(ctx, k.ID, later, lease)
	is.NoErr(err)
	is.Equal(list[0].Name, "second") // the validation record made it durable
	is.True(list[0].LastSeenAt.Equal(later))
	is.True(list[0].FirstSeenAt.Equal(base))
}

// Seats, releases, limits and validations of instances on a few keys from
// many goroutines, with compactions: the store reopens holding exactly what
// it held (every update of a known instance followed by its validation
// record, as the Service writes them), and no key holds more seats than
// its limit.
func TestConcurrentSeatsReplayAsApplied(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{CompactMinBytes: 16 << 10})
	var ids []string
	for i := 0; i < 4; i++ {
		k := storetest.NewKey("org-busy", base)
		k.MaxInstances = 3
		is.NoErr(s.CreateKey(ctx, k))
		ids = append(ids, k.ID)
	}
	var recMu sync.Mutex // one writer of validations, as the Service's recorder
	var wg sync.WaitGroup
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 120; i++ {
				id := ids[rand.IntN(len(ids))]
				inst := fmt.Sprintf("inst-%d", rand.IntN(6))
				// Within one lease of each other: no instance is forgotten
				// for its age, which memory may do earlier than the log
				// (at any time, says the contract).
				at := base.Add(time.Duration(rand.IntN(60)) * time.Hour)
				var err error
				switch w % 4 {
				case 0, 1:
					in := licensing.Instance{ID: inst, Name: fmt.Sprintf("w%d-%d", w, i), LastSeenAt: at}
					_, _, err = s.SeatInstance(ctx, id, in, 3, lease)
					if err == nil {
						recMu.Lock()
						err = s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: id, InstanceID: inst, At: at, InstanceName: in.Name}})
						recMu.Unlock()
					}
				case 2:
					err = s.ReleaseInstance(ctx, id, inst)
				case 3:
					_, err = s.SetMaxInstances(ctx, id, 1+rand.IntN(4))
					if i%40 == 20 {
						err = s.Compact()
					}
				}
				if err != nil && !errors.Is(err, licensing.ErrSeatLimit) && !errors.Is(err, licensing.ErrInstanceNotFound) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.bg.Wait()
	is.True(s.gen > 0) // compactions ran meanwhile
	s.bulk.EachInstances(func(keyID string, list []licensing.Instance) bool {
		is.True(len(list) <= 3) // never more seats than the limit the seats were asked under
		return true
	})
	want := dump(s)
	is.NoErr(s.Close())
	crashed(t, dir)
	s = open(t, dir, Options{})
	is.Equal(dump(s), want) // what memory held is what the log replays to
}

// seatCrashDir names, in the environment of a child process of
// TestSeatCrash, the store it seats instances in until it is killed.
const seatCrashDir = "FILESTORE_SEAT_CRASH_DIR"

// TestSeatCrash kills a process seating new instances on keys with a
// limit (while another goroutine records validations of them and
// compactions run) with SIGKILL at random points, reopens the store, and
// checks that every seat the child saw acknowledged is there, every
// release too, and that no key holds more seats than its limit.
func TestSeatCrash(t *testing.T) {
	if dir := os.Getenv(seatCrashDir); dir != "" {
		seatUntilKilled(t, dir)
		return
	}
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	dir := t.TempDir()
	s := open(t, dir, Options{})
	for i := 0; i < 8; i++ {
		k := storetest.NewKey("org-crash", base)
		k.MaxInstances = 4
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	is.New(t).NoErr(s.Close())

	cuts := 0
	for round := 0; round < rounds; round++ {
		is := is.New(t)
		held := map[[2]string]bool{} // acknowledged: key id, instance id -> seated (true) or released (false)
		oks := killMidway(t, "TestSeatCrash", seatCrashDir, dir, 1+rand.IntN(100), func(f []string) bool {
			switch f[0] {
			case "seat":
				held[[2]string{f[1], f[2]}] = true
			case "releasing": // in flight: either outcome is right
				delete(held, [2]string{f[1], f[2]})
				return false
			case "release":
				held[[2]string{f[1], f[2]}] = false
			default:
				return false
			}
			return true
		})
		s, cut := reopenAfterKill(t, dir, round)
		if cut {
			cuts++
		}
		for ki, seated := range held {
			has := s.bulk.HasInstance(ki[0], ki[1])
			if seated && !has {
				t.Errorf("round %d: the acknowledged seat of %s on %s is lost", round, ki[1], ki[0])
			}
			if !seated && has {
				t.Errorf("round %d: the acknowledged release of %s on %s is lost", round, ki[1], ki[0])
			}
		}
		s.bulk.EachInstances(func(keyID string, list []licensing.Instance) bool {
			if len(list) > 4 {
				t.Errorf("round %d: key %s holds %d seats, its limit is 4", round, keyID, len(list))
			}
			return true
		})
		// The next child starts from a clean slate: release everything.
		var all [][2]string
		s.bulk.EachInstances(func(keyID string, list []licensing.Instance) bool {
			for _, in := range list {
				all = append(all, [2]string{keyID, in.ID})
			}
			return true
		})
		for _, ki := range all {
			is.NoErr(s.ReleaseInstance(ctx, ki[0], ki[1]))
		}
		t.Logf("round %d: killed after %d acknowledged seats and releases", round, oks)
		is.NoErr(s.Close())
	}
	t.Logf("%d of %d kills left part of a record, which Open cut", cuts, rounds)
}

// seatUntilKilled is the child of TestSeatCrash: it seats new instances on
// the store's keys, and releases some, printing "seat key instance" or
// "release key instance" once each returned ("releasing key instance"
// before a release), while another goroutine
// records validations of the seated instances and compactions run (a small
// CompactMinBytes). It stops only when killed (or after a bound, which
// fails the parent's check that it was killed).
func seatUntilKilled(t *testing.T, dir string) {
	s, err := Open(dir, Options{Logger: quiet(), CompactMinBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListKeys(ctx, "org-crash", licensing.KeyCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan [2]string, 64)
	go func() { // validations of seated instances
		for ki := range seen {
			s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: ki[0], InstanceID: ki[1], At: base.Add(time.Minute),
				InstanceName: "validated", Metrics: map[string]float64{"userCount": 1}}})
		}
	}()
	for i := 0; i < 100000; i++ {
		k := keys[rand.IntN(len(keys))]
		inst := fmt.Sprintf("inst-%d", i)
		_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: inst, URL: "https://" + inst + ".example", LastSeenAt: base}, 4, lease)
		switch {
		case errors.Is(err, licensing.ErrSeatLimit):
			list, lerr := s.Instances(ctx, k.ID, base, lease)
			if lerr != nil {
				t.Fatal(lerr)
			}
			victim := list[rand.IntN(len(list))].ID
			fmt.Printf("releasing %s %s\n", k.ID, victim)
			if err := s.ReleaseInstance(ctx, k.ID, victim); err != nil {
				t.Fatalf("release %s: %v", victim, err)
			}
			fmt.Printf("release %s %s\n", k.ID, victim)
		case err != nil:
			t.Fatalf("seat %s: %v", inst, err)
		default:
			fmt.Printf("seat %s %s\n", k.ID, inst)
			select {
			case seen <- [2]string{k.ID, inst}:
			default:
			}
		}
	}
}

// heldSyncFile, once armed, reports each Sync on entered, holds it until
// gate is closed, and fails it.
type heldSyncFile struct {
	file
	armed   *atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (f heldSyncFile) Sync() error {
	if !f.armed.Load() {
		return f.file.Sync()
	}
	f.entered <- struct{}{}
	<-f.gate
	return errors.New("injected fsync failure")
}

// A seat whose record is not durable yet decides nothing for another
// instance of its key: the other waits for the record rather than be
// refused for a seat that may never exist, and once the write failed (the
// seat taken back, the store failed) it is told the store failed, not that
// the key is full. Instances does not list it meanwhile either.
func TestSeatInFlightDecidesNothing(t *testing.T) {
	is := is.New(t)
	var armed atomic.Bool
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	s := open(t, t.TempDir(), Options{wrapFile: func(f file) file { return heldSyncFile{f, &armed, entered, gate} }})
	k := storetest.NewKey("org-1", base)
	k.MaxInstances = 1
	is.NoErr(s.CreateKey(ctx, k))
	armed.Store(true)
	first, second := make(chan error, 1), make(chan error, 1)
	go func() {
		_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: base}, 1, lease)
		first <- err
	}()
	<-entered // a's record is being fsynced
	go func() {
		_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: base}, 1, lease)
		second <- err
	}()
	listed := make(chan []licensing.Instance, 1)
	go func() {
		list, _ := s.Instances(ctx, k.ID, base, lease)
		listed <- list
	}()
	time.Sleep(50 * time.Millisecond) // time for a wrong answer to come; a right one never comes before the gate
	var err error
	var early []string
	select {
	case err = <-second:
		early = append(early, fmt.Sprintf("the other instance was answered (%v)", err))
	default:
	}
	select {
	case list := <-listed:
		early = append(early, fmt.Sprintf("Instances answered %+v", list))
		listed <- list
	default:
	}
	close(gate)
	is.True(errors.Is(<-first, licensing.ErrStoreFailed)) // the write failed
	if early != nil {
		t.Fatalf("while the first seat was in flight: %s", strings.Join(early, "; "))
	}
	is.Equal(len(<-listed), 0) // Instances waited, and never listed the seat
	err = <-second
	is.True(errors.Is(err, licensing.ErrStoreFailed)) // and the other instance is told so
	is.True(!errors.Is(err, licensing.ErrSeatLimit))  // not that a seat it never saw durable is taken
	list, err := s.Instances(ctx, k.ID, base, lease)
	is.NoErr(err)
	is.Equal(len(list), 0) // no seat was kept
}

// An instance that holds a seat validates without waiting for the store's
// disk: not even for the fsync of another instance's new seat on its key
// (the validate route is the hot path).
func TestSeatedInstanceWaitsForNoSeatWrite(t *testing.T) {
	is := is.New(t)
	var armed atomic.Bool
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	s := open(t, t.TempDir(), Options{wrapFile: func(f file) file { return heldSyncFile{f, &armed, entered, gate} }})
	k := storetest.NewKey("org-1", base)
	is.NoErr(s.CreateKey(ctx, k))
	_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: base}, 0, lease)
	is.NoErr(err)
	armed.Store(true)
	newSeat := make(chan error, 1)
	go func() {
		_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: base}, 0, lease)
		newSeat <- err
	}()
	<-entered // b's record is being fsynced
	known := make(chan error, 1)
	go func() {
		_, added, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "seen again", LastSeenAt: base.Add(time.Minute)}, 0, lease)
		if err == nil && added {
			err = errors.New("a took a new seat")
		}
		known <- err
	}()
	select {
	case err = <-known:
	case <-time.After(10 * time.Second): // a guard against hanging, not a measure: the answer needs no disk
		close(gate)
		t.Fatal("a seated instance waited for another instance's seat record")
	}
	close(gate)
	is.NoErr(err)
	is.True(errors.Is(<-newSeat, licensing.ErrStoreFailed))
	list, err := s.Instances(ctx, k.ID, base.Add(time.Minute), lease)
	is.NoErr(err)
	is.Equal(len(list), 1) // b's seat was taken back, a's update kept
	is.Equal(list[0].Name, "seen again")
}

// A seat refused after the lease forgot an instance of the key (a lowered
// limit, every seat taken) leaves the key's instances whole: a compaction
// then writes them, and the store opens again holding them.
func TestRefusedSeatThenCompaction(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	k := storetest.NewKey("org-1", base)
	k.MaxInstances = 3
	is.NoErr(s.CreateKey(ctx, k))
	for i, id := range []string{"a", "b", "c"} {
		_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: id, LastSeenAt: base.Add(time.Duration(i) * 10 * time.Hour)}, 3, lease)
		is.NoErr(err)
	}
	_, err := s.SetMaxInstances(ctx, k.ID, 2)
	is.NoErr(err)
	later := base.Add(lease + time.Minute) // a's lease has run out; b and c hold the two seats
	_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "d", LastSeenAt: later}, 2, lease)
	is.True(errors.Is(err, licensing.ErrSeatLimit))
	before := dump(s)
	is.NoErr(s.Compact())
	s.Close()
	s, err = Open(dir, Options{Logger: quiet()})
	is.NoErr(err) // the snapshot reads back
	defer s.Close()
	is.Equal(dump(s), before)
	list, err := s.Instances(ctx, k.ID, later, lease)
	is.NoErr(err)
	is.Equal(len(list), 2) // c and b
}

// An instance that validated just before another took a seat keeps its own
// seat across a restart, even when its validation record reached the log
// after that seat's record (the recorder writes in batches): the replay
// forgets only what the store had forgotten.
func TestSeatKeptAcrossRestartWhenItsRecordFollowsAnotherSeat(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	k := storetest.NewKey("org-1", base)
	k.MaxInstances = 2
	is.NoErr(s.CreateKey(ctx, k))
	_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: base}, 2, lease)
	is.NoErr(err)
	seen := base.Add(lease - time.Hour) // a validates again before its lease runs out: in memory until its record
	_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: seen}, 2, lease)
	is.NoErr(err)
	taken := base.Add(lease + time.Minute) // b takes the other seat; a holds its own (seen an hour ago)
	_, added, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: taken}, 2, lease)
	is.NoErr(err)
	is.True(added)
	is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, InstanceID: "a", FirstAt: seen, At: seen}})) // a's batch, after b's seat
	before := dump(s)
	s.Close()

	s = open(t, dir, Options{})
	is.Equal(dump(s), before) // the store reopens as it was
	_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "c", LastSeenAt: taken}, 2, lease)
	is.True(errors.Is(err, licensing.ErrSeatLimit)) // a and b hold the two seats
	_, added, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: taken}, 2, lease)
	is.NoErr(err) // a keeps validating
	is.True(!added)
}
