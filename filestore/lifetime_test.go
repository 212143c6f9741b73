package filestore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/storetest"
)

// testdata/store-before-lifetime was written by the code of main at
// d2f8638 (before keys had a lifetime) and closed cleanly: a snapshot of
// two keys and a log with two more creates, a validation and a revocation.
// It opens unchanged, its keys never expire, and the lifetime writes work on
// it and survive a reopen.
func TestStoreWrittenBeforeLifetimesOpens(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "store")
	copyDir(t, filepath.Join("testdata", "store-before-lifetime"), dir)
	s := open(t, dir, Options{PepperFingerprint: "fixture-pepper-fingerprint"})
	keys, err := s.ListKeys(ctx, "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(len(keys), 4) // the snapshot's keys and the log's
	for _, k := range keys {
		is.True(k.ExpiresAt.IsZero()) // a key written before lifetimes never expires
		is.Equal(k.RotatedTo, "")
		is.Equal(k.RotatedFrom, "")
	}
	first, err := s.KeyByLookup(ctx, "lookup-1")
	is.NoErr(err)
	is.Equal(first.InstanceURL, "https://a.example") // the old log's validation
	is.Equal(first.LastMetrics["userCount"], 3.0)
	third, err := s.KeyByLookup(ctx, "lookup-3")
	is.NoErr(err)
	is.True(!third.Active) // and its revocation

	next := storetest.NewKey("org-1", base.Add(time.Hour))
	ends := base.Add(7 * 24 * time.Hour)
	_, err = s.RotateKey(ctx, first.ID, next, ends)
	is.NoErr(err)
	second, err := s.KeyByLookup(ctx, "lookup-2")
	is.NoErr(err)
	_, err = s.SetKeyExpiry(ctx, second.ID, ends)
	is.NoErr(err)
	want := dump(s)
	is.NoErr(s.Close())
	s = open(t, dir, Options{PepperFingerprint: "fixture-pepper-fingerprint"})
	is.Equal(dump(s), want) // lifetime records appended to the old log are read back
	n, err := s.KeyByID(ctx, next.ID)
	is.NoErr(err)
	is.Equal(n.RotatedFrom, first.ID)
	is.Equal(n.InstanceURL, "https://a.example") // taken over from the old key
	is.NoErr(s.Compact())
	is.NoErr(s.Close())
	s = open(t, dir, Options{PepperFingerprint: "fixture-pepper-fingerprint"})
	is.Equal(dump(s), want) // and survive a compaction
}

// A key without a lifetime is written as before lifetimes existed (the
// release before them opens such a store); a rotation is one record, whose
// new key carries its lifetime fields.
func TestRotationIsOneRecord(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	old := storetest.NewKey("org-1", base)
	is.NoErr(s.CreateKey(ctx, old))
	next := storetest.NewKey("org-1", base)
	_, err := s.RotateKey(ctx, old.ID, next, base.Add(time.Hour))
	is.NoErr(err)
	is.NoErr(s.Close())
	var types []byte
	_, err = scan(filepath.Join(dir, logName(0)), kindLog, false, func(_ int64, p []byte) error {
		types = append(types, p[0])
		return nil
	})
	is.NoErr(err)
	is.Equal(types, []byte{recKey, recRotate}) // a plain create, then the whole rotation in one record
}

// A crash while the rotation's record is written: the log cut at every
// offset inside it, or with its unwritten part zero-filled, opens with no
// new key and the old key as it was; only the whole record gives the
// rotation, with both of its changes.
func TestInterruptedRotationAtEveryOffset(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	keys := fill(t, s, 6)
	old := keys[0]
	_, err := s.SetKeyExpiry(ctx, old.ID, base.Add(48*time.Hour))
	is.NoErr(err)
	before := dump(s)
	start, _ := s.log.stats()
	next := storetest.NewKey("org-0", base)
	_, err = s.RotateKey(ctx, old.ID, next, base.Add(time.Hour))
	is.NoErr(err)
	after := dump(s)
	checkCutsOfLastWrite(t, s, dir, start, before, after, "rotation")
}

// crashChildDir names, in the environment of a child process of
// TestRotationCrash, the store it rotates keys in until it is killed.
const crashChildDir = "FILESTORE_ROTATION_CRASH_DIR"

// TestRotationCrash kills a process rotating keys (while another goroutine
// records validations and compactions run) with SIGKILL at random points,
// reopens the store, and checks that every rotation is whole or absent:
// an old key names a new key exactly when that key exists and names it
// back, and every rotation the child saw acknowledged is there.
func TestRotationCrash(t *testing.T) {
	if dir := os.Getenv(crashChildDir); dir != "" {
		rotateUntilKilled(t, dir)
		return
	}
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	s := open(t, dir, Options{})
	for i := 0; i < 16; i++ {
		k := storetest.NewKey("org-crash", base)
		if i%2 == 0 {
			k.ExpiresAt = base.Add(time.Duration(i) * 24 * time.Hour)
		}
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	is.New(t).NoErr(s.Close())

	cuts := 0 // rounds whose kill tore a record
	inflightWhole, inflightAbsent := 0, 0
	checked := map[string]bool{} // new ids of rotations in flight at a kill, counted
	acked := map[string]string{} // old id -> new id, acknowledged to the child
	tried := map[string]string{} // new id -> old id, asked for
	for round := 0; round < rounds; round++ {
		is := is.New(t)
		// killed after 1 to 150 acknowledged rotations
		oks := killMidway(t, "TestRotationCrash", crashChildDir, dir, 1+rand.IntN(150), func(f []string) bool {
			switch f[0] {
			case "try":
				tried[f[2]] = f[1]
			case "ok":
				acked[f[1]] = f[2]
				return true
			}
			return false
		})
		s, cut := reopenAfterKill(t, dir, round)
		if cut {
			cuts++
		}
		keys, err := s.ListKeys(ctx, "org-crash", licensing.KeyCursor{}, 0)
		is.NoErr(err)
		byID := map[string]licensing.Key{}
		for _, k := range keys {
			byID[k.ID] = k
		}
		for _, k := range keys {
			if k.RotatedTo != "" {
				n, ok := byID[k.RotatedTo]
				if !ok || n.RotatedFrom != k.ID {
					t.Errorf("round %d: key %s names %s as its successor, which is missing or does not name it back: half a rotation", round, k.ID, k.RotatedTo)
				}
				if k.ExpiresAt.IsZero() {
					t.Errorf("round %d: rotated key %s never expires", round, k.ID)
				}
			}
			if k.RotatedFrom != "" {
				o, ok := byID[k.RotatedFrom]
				if !ok || o.RotatedTo != k.ID {
					t.Errorf("round %d: key %s names %s as its predecessor, which is missing or does not name it: half a rotation", round, k.ID, k.RotatedFrom)
				}
				if tried[k.ID] != k.RotatedFrom {
					t.Errorf("round %d: key %s comes from a rotation the child never asked for", round, k.ID)
				}
			}
		}
		for newID, oldID := range tried {
			if acked[oldID] == newID || checked[newID] {
				continue
			}
			checked[newID] = true // in flight at this round's kill
			if _, ok := byID[newID]; ok {
				inflightWhole++
			} else {
				inflightAbsent++
			}
		}
		for oldID, newID := range acked {
			if byID[oldID].RotatedTo != newID {
				t.Errorf("round %d: the acknowledged rotation of %s to %s is lost", round, oldID, newID)
			}
		}
		t.Logf("round %d: killed after %d acknowledged rotations; %d keys", round, oks, len(keys))
		is.NoErr(s.Close())
	}
	// A killed process's write(2) lands whole in the page cache, so a kill
	// rarely leaves part of a record; TestInterruptedRotationAtEveryOffset
	// tears the record at every byte.
	t.Logf("%d of %d kills left part of a record, which Open cut; rotations in flight at the kill: %d whole, %d absent",
		cuts, rounds, inflightWhole, inflightAbsent)
}

// rotateUntilKilled is the child of TestRotationCrash: it rotates the
// store's newest keys in a loop, printing "try old new" before each
// rotation and "ok old new" once it returned, while another goroutine
// records validations that change the instance fields the rotations copy,
// and compactions run (a small CompactMinBytes). It stops only when killed
// (or after a bound, which fails the parent's check that it was killed).
func rotateUntilKilled(t *testing.T, dir string) {
	s, err := Open(dir, Options{Logger: quiet(), CompactMinBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListKeys(ctx, "org-crash", licensing.KeyCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var heads []string // keys that can be rotated
	for _, k := range keys {
		if k.Active && k.RotatedTo == "" {
			heads = append(heads, k.ID)
		}
	}
	headCh := make(chan []string, 1)
	go func() { // validations of the keys being rotated
		var hs []string
		for i := 0; ; i++ {
			select {
			case hs = <-headCh:
			default:
			}
			if len(hs) == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			id := hs[rand.IntN(len(hs))]
			s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: id, At: base, InstanceURL: fmt.Sprintf("https://%d.example", i)}})
		}
	}()
	for i := 0; i < 100000; i++ {
		select {
		case headCh <- append([]string(nil), heads...):
		default:
		}
		j := rand.IntN(len(heads))
		old := heads[j]
		if i%5 == 4 {
			s.SetKeyExpiry(ctx, old, base.Add(time.Duration(i)*time.Hour))
		}
		next := storetest.NewKey("org-crash", base.Add(time.Duration(i)*time.Millisecond))
		fmt.Printf("try %s %s\n", old, next.ID)
		if _, err := s.RotateKey(ctx, old, next, base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatalf("rotate %s: %v", old, err)
		}
		fmt.Printf("ok %s %s\n", old, next.ID)
		heads[j] = next.ID
	}
}

// Rotations, expiries, revocations, validations (changing the instance
// fields a rotation copies; from one goroutine, as the Service writes them)
// and creates on the same keys from many goroutines, with compactions: the store reopens holding exactly what it
// held, so the log has the lifetime writes in the order memory applied them.
func TestConcurrentLifetimeWritesReplayAsApplied(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{CompactMinBytes: 16 << 10})
	var mu sync.Mutex
	var ids []string
	for i := 0; i < 8; i++ {
		k := storetest.NewKey("org-busy", base)
		is.NoErr(s.CreateKey(ctx, k))
		ids = append(ids, k.ID)
	}
	pick := func() string {
		mu.Lock()
		defer mu.Unlock()
		return ids[rand.IntN(len(ids))]
	}
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				id := pick()
				at := base.Add(time.Duration(rand.IntN(1000)) * time.Minute)
				var err error
				switch w % 5 {
				case 0:
					next := storetest.NewKey("org-busy", base)
					if _, err = s.RotateKey(ctx, id, next, at); err == nil {
						mu.Lock()
						ids = append(ids, next.ID)
						mu.Unlock()
					}
				case 1:
					_, err = s.SetKeyExpiry(ctx, id, at)
				case 2:
					// One writer of validations, as the Service's recorder: two
					// concurrent batches setting different instance fields
					// would be a race of their own, lifetimes aside.
					if w == 2 {
						err = s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: id, At: at,
							InstanceName: fmt.Sprintf("name %d", i), InstanceURL: fmt.Sprintf("https://%d.example", i)}})
					}
				case 3:
					if i%10 == 9 {
						_, err = s.RevokeKey(ctx, id, base) // one time: concurrent revocations agree
					}
					if i%50 == 25 {
						err = s.Compact()
					}
				case 4:
					k := storetest.NewKey("org-busy", at)
					if err = s.CreateKey(ctx, k); err == nil {
						mu.Lock()
						ids = append(ids, k.ID)
						mu.Unlock()
					}
				}
				if err != nil && !errors.Is(err, licensing.ErrKeyRevoked) && !errors.Is(err, licensing.ErrKeyRotated) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.bg.Wait()
	is.True(s.gen > 0) // compactions ran meanwhile
	want := dump(s)
	is.NoErr(s.Close())
	crashed(t, dir) // replay without the clean-shutdown marker's size check
	s = open(t, dir, Options{})
	is.Equal(dump(s), want) // what memory held is what the log replays to
}

// Expiries the codec cannot read back (the Unix epoch would read back as
// "never", years past 2262 overflow Unix nanoseconds) are refused before
// anything reaches the log: the store reopens with what it held, rather
// than refusing to open over a record it acknowledged, or reading a key
// back with another expiry.
func TestRefusedExpiryWritesNothing(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	old := storetest.NewKey("org-1", base)
	is.NoErr(s.CreateKey(ctx, old))
	for _, at := range []time.Time{time.Unix(0, 0), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)} {
		k := storetest.NewKey("org-1", base)
		k.ExpiresAt = at
		is.True(errors.Is(s.CreateKey(ctx, k), licensing.ErrInvalidExpiry)) // refused
		_, err := s.SetKeyExpiry(ctx, old.ID, at)
		is.True(errors.Is(err, licensing.ErrInvalidExpiry))
		_, err = s.RotateKey(ctx, old.ID, storetest.NewKey("org-1", base), at)
		is.True(errors.Is(err, licensing.ErrInvalidExpiry))
	}
	want := dump(s)
	is.NoErr(s.Close())
	crashed(t, dir)
	s, err := Open(dir, Options{Logger: quiet()})
	is.NoErr(err) // nothing refused reached the log
	defer s.Close()
	is.Equal(dump(s), want)
}

// shortWriteFile, once armed, writes only the first half of what it is
// given and fails as a full disk does.
type shortWriteFile struct {
	file
	full *atomic.Bool
}

func (f shortWriteFile) Write(p []byte) (int, error) {
	if f.full.Load() {
		n, _ := f.file.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return f.file.Write(p)
}

// A rotation whose write or fsync fails returns the error and fails the
// store; the store reopens with the rotation whole or absent, never half:
// a full disk leaves part of the record, which Open cuts; a failed fsync
// may leave all of it (the store's error says the outcome is unknown).
func TestRotationWriteFailure(t *testing.T) {
	tests := []struct {
		name      string
		wrap      func(f file, armed *atomic.Bool) file
		wantWhole bool // the rotation is there after reopening
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
			keys := fill(t, s, 6)
			old := keys[0]
			old, err = s.SetKeyExpiry(ctx, old.ID, base.Add(48*time.Hour))
			is.NoErr(err)
			before := dump(s)
			next := storetest.NewKey("org-0", base)
			armed.Store(true)
			_, err = s.RotateKey(ctx, old.ID, next, base.Add(time.Hour))
			armed.Store(false)
			is.True(errors.Is(err, licensing.ErrStoreFailed)) // the rotation fails, and says the store failed
			is.Equal(dump(s), before)                         // memory has none of it
			_, err = s.KeyByID(ctx, next.ID)
			is.True(errors.Is(err, licensing.ErrKeyNotFound))
			s.Close()

			s = open(t, dir, Options{})
			o, err := s.KeyByID(ctx, old.ID)
			is.NoErr(err)
			n, nerr := s.KeyByID(ctx, next.ID)
			if !tc.wantWhole {
				is.Equal(dump(s), before)                          // no rotation: everything as it was
				is.True(errors.Is(nerr, licensing.ErrKeyNotFound)) // no new key
				return
			}
			is.NoErr(nerr)                                       // the whole rotation: the new key
			is.Equal(n.RotatedFrom, old.ID)                      // naming the old key
			is.Equal(o.RotatedTo, next.ID)                       // which names it
			is.True(o.ExpiresAt.Equal(base.Add(time.Hour)))      // and ends
			is.True(n.ExpiresAt.Equal(base.Add(48 * time.Hour))) // the new key took the old expiry over
		})
	}
}
