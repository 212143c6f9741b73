package filestore

import (
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/storetest"
)

func TestPepperFingerprint(t *testing.T) {
	tests := []struct {
		name     string
		first    string // fingerprint the store is created with ("-" : made with no keys, no fingerprint)
		keys     bool   // the first session creates keys
		compact  bool   // and compacts, so the record lives in a snapshot
		reopen   string // fingerprint of the second Open
		mismatch bool
	}{
		{"same fingerprint opens", "fp-a", true, false, "fp-a", false},
		{"same fingerprint after compaction", "fp-a", true, true, "fp-a", false},
		{"replaced pepper refuses", "fp-a", true, false, "fp-b", true},
		{"replaced pepper refuses after compaction", "fp-a", true, true, "fp-b", true},
		{"a store without keys adopts a new pepper", "fp-a", false, false, "fp-b", false},
		{"empty option skips the check", "fp-a", true, false, "", false},
		{"store without a fingerprint adopts the one given", "", true, false, "fp-b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			s := open(t, dir, Options{PepperFingerprint: tc.first})
			if tc.keys {
				fill(t, s, 5)
			}
			if tc.compact {
				is.NoErr(s.Compact())
			}
			want := dump(s)
			is.NoErr(s.Close())

			s2, err := Open(dir, Options{Logger: quiet(), PepperFingerprint: tc.reopen})
			if tc.mismatch {
				is.True(errors.Is(err, ErrPepperMismatch))                                       // refused, errors.Is-able
				is.True(strings.Contains(err.Error(), "every issued key would stop validating")) // says what is at stake
				is.True(strings.Contains(err.Error(), dir))                                      // and which store
				is.True(!strings.Contains(err.Error(), tc.first))                                // without the recorded fingerprint
				// the refused Open released the lock and left the store as it was
				s3 := open(t, dir, Options{PepperFingerprint: tc.first})
				is.Equal(dump(s3), want)
				return
			}
			is.NoErr(err)
			is.Equal(dump(s2), want)
			if !tc.keys {
				fill(t, s2, 1) // a key under the adopted pepper
			}
			s2.Close()
			if tc.reopen != "" && (tc.first == "" || !tc.keys) {
				// adopted durably: another pepper is now refused
				_, err := Open(dir, Options{Logger: quiet(), PepperFingerprint: "fp-c"})
				is.True(errors.Is(err, ErrPepperMismatch))
			}
		})
	}
}

func TestPepperFingerprintWriteFailureFailsOpen(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	fill(t, s, 2)
	s.Close()
	var fail atomic.Bool
	fail.Store(true)
	_, err := Open(dir, Options{Logger: quiet(), PepperFingerprint: "fp-a",
		wrapFile: func(f file) file { return faultyFile{f, &fail} }})
	is.True(err != nil) // a fingerprint that could not be recorded is not silently skipped
	is.True(strings.Contains(err.Error(), "injected fsync failure"))
	_, err = os.Stat(dir)
	is.NoErr(err)
	s = open(t, dir, Options{PepperFingerprint: "fp-a"}) // the lock was released
	is.Equal(s.bulk.Len(), 2)
	is.NoErr(s.CreateKey(ctx, storetest.NewKey("org-1", base)))
}

// TestCheckPepper: the check licensing.New makes records the fingerprint
// durably (in the log, then in a snapshot), refuses another while the store
// holds keys, and runs safely beside writers and a compaction.
func TestCheckPepper(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s := open(t, dir, Options{})
	is.True(s.CheckPepper(ctx, "") != nil) // an empty fingerprint is a caller's mistake
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 50 {
			if err := s.CreateKey(ctx, storetest.NewKey("org-1", base)); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Go(func() { s.Compact() })
	is.NoErr(s.CheckPepper(ctx, "fp-a")) // recorded, whatever runs beside it
	wg.Wait()
	is.NoErr(s.CheckPepper(ctx, "fp-a"))                              // the same again
	is.True(errors.Is(s.CheckPepper(ctx, "fp-b"), ErrPepperMismatch)) // another, over keys
	is.NoErr(s.Compact())                                             // the record moves into the snapshot
	is.NoErr(s.Close())

	s2 := open(t, dir, Options{})
	defer s2.Close()
	err := s2.CheckPepper(ctx, "fp-b")
	is.True(errors.Is(err, ErrPepperMismatch))  // remembered across a reopen
	is.True(strings.Contains(err.Error(), dir)) // naming the store
	is.NoErr(s2.CheckPepper(ctx, "fp-a"))
}
