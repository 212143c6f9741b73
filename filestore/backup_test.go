package filestore

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/storetest"
)

// A backup taken under 32 concurrent creates (and compactions) restores to
// a store holding every key whose create returned before Backup started,
// with every earlier revocation and validation record.
func TestBackupUnderConcurrentCreates(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{CompactMinBytes: 8 << 10, PepperFingerprint: "fp-a"})
	fill(t, s, 12) // creates, revocations, validations
	before := dump(s)

	var (
		mu    sync.Mutex
		acked []licensing.Key
		stop  = make(chan struct{})
		half  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := storetest.NewKey("org-busy", base)
				if err := s.CreateKey(ctx, k); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, k)
				n := len(acked)
				if n == 300 {
					close(half)
				}
				mu.Unlock()
				if n%100 == 50 { // compactions race with the backup
					if err := s.Compact(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	<-half
	mu.Lock()
	want := append([]licensing.Key(nil), acked...) // returned before Backup was called
	mu.Unlock()
	var backup bytes.Buffer
	is.NoErr(s.Backup(ctx, &backup))
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= len(want)+300 { // writers kept going during and after the backup
			break
		}
	}
	close(stop)
	wg.Wait()
	is.True(s.gen > 0) // compactions ran meanwhile

	restored := filepath.Join(t.TempDir(), "restored")
	is.NoErr(Restore(bytes.NewReader(backup.Bytes()), restored))
	r := open(t, restored, Options{PepperFingerprint: "fp-a"})
	for _, k := range want {
		got, err := r.KeyByID(ctx, k.ID)
		is.NoErr(err) // every acknowledged key is in the backup
		is.Equal(got.LookupValue, k.LookupValue)
	}
	got := dump(r)
	for _, line := range strings.Split(before, "\n") {
		is.True(strings.Contains(got, line)) // with its revocation and validation fields
	}
	is.True(r.bulk.Len() <= s.bulk.Len())

	// the restored store carries the pepper fingerprint
	r.Close()
	_, err := Open(restored, Options{Logger: quiet(), PepperFingerprint: "fp-b"})
	is.True(errors.Is(err, ErrPepperMismatch))
}

func TestBackupRestoresEverything(t *testing.T) {
	for _, compacted := range []bool{false, true} {
		t.Run(map[bool]string{false: "log only", true: "snapshot and log"}[compacted], func(t *testing.T) {
			is := is.New(t)
			s := open(t, t.TempDir(), Options{})
			fill(t, s, 20)
			if compacted {
				is.NoErr(s.Compact())
				fill(t, s, 5)
			}
			var b bytes.Buffer
			is.NoErr(s.Backup(ctx, &b))
			dir := filepath.Join(t.TempDir(), "r")
			is.NoErr(os.Mkdir(dir, 0o700)) // an empty directory is fine too
			is.NoErr(Restore(&b, dir))
			r := open(t, dir, Options{})
			is.Equal(dump(r), dump(s)) // every key, revocation and validation
			is.NoErr(r.CreateKey(ctx, storetest.NewKey("org-1", base)))
		})
	}
}

func TestRestoreRefuses(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	fill(t, s, 5)
	var good bytes.Buffer
	if err := s.Backup(ctx, &good); err != nil {
		t.Fatal(err)
	}
	flip := func(at int) []byte {
		b := bytes.Clone(good.Bytes())
		b[at] ^= 0x10
		return b
	}
	tests := []struct {
		name   string
		backup []byte
		setup  func(dir string) // makes dir before Restore
		want   string
	}{
		{"non-empty directory", good.Bytes(), func(dir string) {
			os.MkdirAll(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "keep-me"), []byte("x"), 0o600)
		}, "not empty"},
		{"flipped byte in a file", flip(len(good.Bytes()) / 2), nil, "checksum mismatch"},
		{"flipped byte in a checksum", flip(len(good.Bytes()) - 40), nil, "checksum mismatch"},
		{"flipped byte in the final checksum", flip(len(good.Bytes()) - 1), nil, "checksum mismatch over the whole backup"},
		{"truncated", good.Bytes()[:len(good.Bytes())-100], nil, "ends early"},
		{"truncated at the end", good.Bytes()[:len(good.Bytes())-1], nil, "ends early"},
		{"empty", nil, nil, "not a store backup"},
		{"not a backup", []byte("LKSTORE\nwhatever this is"), nil, "not a store backup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := filepath.Join(t.TempDir(), "r")
			if tc.setup != nil {
				tc.setup(dir)
			}
			err := Restore(bytes.NewReader(tc.backup), dir)
			is.True(err != nil)
			is.True(strings.Contains(err.Error(), tc.want)) // says why
			if tc.setup != nil {
				b, err := os.ReadFile(filepath.Join(dir, "keep-me"))
				is.NoErr(err)
				is.Equal(string(b), "x") // left alone
				return
			}
			_, err = os.Stat(dir)
			is.True(errors.Is(err, os.ErrNotExist)) // nothing left behind
		})
	}
}

func TestInterruptedRestoreRefusesToOpen(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(os.WriteFile(filepath.Join(dir, restoringName), nil, 0o600))
	_, err := Open(dir, Options{Logger: quiet()})
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "unfinished restore")) // not an empty store
}

func TestBackupStopsOnCancel(t *testing.T) {
	is := is.New(t)
	s := open(t, t.TempDir(), Options{})
	fill(t, s, 3)
	c, cancel := context.WithCancel(ctx)
	cancel()
	is.True(errors.Is(s.Backup(c, &bytes.Buffer{}), context.Canceled))
	is.NoErr(s.CreateKey(ctx, storetest.NewKey("org-1", base))) // writers are not held
}

// A backup taken while rotations (and compactions) run restores to a store
// in which every rotation is whole or absent, and every rotation
// acknowledged before Backup was called is there.
func TestBackupUnderConcurrentRotations(t *testing.T) {
	is := is.New(t)
	s := open(t, t.TempDir(), Options{CompactMinBytes: 8 << 10})
	var (
		mu    sync.Mutex
		acked = map[string]string{} // old id -> new id
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		head := storetest.NewKey("org-rot", base)
		is.NoErr(s.CreateKey(ctx, head))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				next := storetest.NewKey("org-rot", base)
				if _, err := s.RotateKey(ctx, head.ID, next, base.Add(time.Hour)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[head.ID] = next.ID
				mu.Unlock()
				head = next
				if i%50 == 25 {
					if err := s.Compact(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	want := maps.Clone(acked) // acknowledged before Backup was called
	mu.Unlock()
	var backup bytes.Buffer
	is.NoErr(s.Backup(ctx, &backup))
	close(stop)
	wg.Wait()

	restored := filepath.Join(t.TempDir(), "restored")
	is.NoErr(Restore(bytes.NewReader(backup.Bytes()), restored))
	r := open(t, restored, Options{})
	for oldID, newID := range want {
		o, err := r.KeyByID(ctx, oldID)
		is.NoErr(err)
		is.Equal(o.RotatedTo, newID) // every acknowledged rotation is in the backup
	}
	keys, err := r.ListKeys(ctx, "org-rot", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	for _, k := range keys {
		if k.RotatedTo != "" {
			n, err := r.KeyByID(ctx, k.RotatedTo)
			is.NoErr(err)                 // no link to a missing key: no half rotation
			is.Equal(n.RotatedFrom, k.ID) // and the new key names the old one
		}
		if k.RotatedFrom != "" {
			o, err := r.KeyByID(ctx, k.RotatedFrom)
			is.NoErr(err)
			is.Equal(o.RotatedTo, k.ID)
		}
	}
}
