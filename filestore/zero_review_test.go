package filestore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/matryer/is"
)

// TestReviewZeroedAcknowledgedTail (review): issue 10 says only bytes
// written after the last completed fsync may be cut at open. Here every
// record of the log was fsynced and acknowledged; then a block at the end of
// the file is zeroed (a lost or zeroed sector of complete, synced data:
// same size, no append). Open treats it as an interrupted append and cuts
// it: acknowledged creates and a revocation are gone, with a warning.
// Expected: a CorruptError (the store cannot know from the bytes alone that
// they were never synced; it needs a durable record of the synced size or
// a commit marker).
func TestReviewZeroedAcknowledgedTail(t *testing.T) {
	for _, zero := range []int64{1, 496, 600} {
		is := is.New(t)
		dir := t.TempDir()
		s := open(t, dir, Options{})
		fill(t, s, 12)
		want := dump(s)
		s.Close()
		path := filepath.Join(dir, logName(0))
		fi, err := os.Stat(path)
		is.NoErr(err)
		f, err := os.OpenFile(path, os.O_WRONLY, 0o600)
		is.NoErr(err)
		_, err = f.WriteAt(make([]byte, zero), fi.Size()-zero) // the last bytes, synced and acknowledged, now zeros
		is.NoErr(err)
		f.Close()
		s2, err := Open(dir, Options{Logger: quiet()})
		var ce *CorruptError
		if errors.As(err, &ce) {
			continue // held
		}
		is.NoErr(err)
		got := dump(s2)
		s2.Close()
		if got != want {
			t.Errorf("%d zeroed bytes at the end of a fully synced log: Open succeeded with fewer acknowledged records (size %d, now %d)", zero, len(want), len(got))
		}
	}
}
