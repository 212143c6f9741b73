package filestore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestNewestLogLostAfterCleanShutdown: the clean-shutdown marker names the
// newest log; if that log is gone (a copy or restore that skipped it, an
// rm), Open refuses rather than start over from the snapshot without the
// records acknowledged after it.
func TestNewestLogLostAfterCleanShutdown(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quiet()})
	is.NoErr(err)
	fill(t, s, 6)
	is.NoErr(s.Compact())
	fill(t, s, 6)
	is.NoErr(s.Close())
	b, err := os.ReadFile(filepath.Join(dir, cleanName))
	is.NoErr(err)
	t.Logf("clean-shutdown: %q", b)
	is.NoErr(os.Remove(filepath.Join(dir, logName(1)))) // the newest log is lost
	s2, err := Open(dir, Options{Logger: quiet()})
	if err == nil {
		t.Logf("opened with %d keys of 12", s2.bulk.Len())
		s2.Close()
	}
	is.True(err != nil) // the marker says log-1 held acknowledged records
}

// TestSnapshotLostRefuses: compaction makes snapshot N durable before log
// N, so a log with no snapshot of its generation means the snapshot was
// lost; Open refuses (with or without a clean shutdown before), and never
// records another pepper fingerprint over what is left.
func TestSnapshotLostRefuses(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "after a clean shutdown", true: "after a crash"}[crash], func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			s, err := Open(dir, Options{Logger: quiet(), PepperFingerprint: "fp-one"})
			is.NoErr(err)
			fill(t, s, 6)
			is.NoErr(s.Compact())
			fill(t, s, 6)
			is.NoErr(s.Close())
			if crash {
				crashed(t, dir)
			}
			is.NoErr(os.Remove(filepath.Join(dir, snapshotName(1))))
			_, err = Open(dir, Options{Logger: quiet(), PepperFingerprint: "fp-two"}) // another pepper, even
			var ce *CorruptError
			is.True(errors.As(err, &ce)) // snapshot-1 held 6 acknowledged keys
			is.True(strings.Contains(ce.Reason, snapshotName(1)))
		})
	}
	t.Run("a snapshot without any log", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		s := open(t, dir, Options{})
		fill(t, s, 3)
		is.NoErr(s.Compact())
		fill(t, s, 3)
		is.NoErr(s.Close())
		crashed(t, dir)
		is.NoErr(os.Remove(filepath.Join(dir, logName(1))))
		_, err := Open(dir, Options{Logger: quiet()})
		var ce *CorruptError
		is.True(errors.As(err, &ce)) // the 3 keys after the snapshot are lost: refused
	})
}
