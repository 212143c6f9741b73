package filestore

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/matryer/is"
)

// TestReviewNewestLogLostAfterCleanShutdown (review3). Promise (filestore.go
// package doc, SECURITY.md): "After a clean Close ... nothing was in flight,
// so Open refuses even the damage a crash could explain (zeroed last bytes,
// a shorter log) instead of cutting it"; clean-shutdown records the newest
// log's name and size.
//
// Reproduction: Open, 6 keys, Compact (snapshot-1, log-1), 6 more keys,
// Close (clean-shutdown says log-0000000000000001 and its size); then the
// newest log goes missing (a restore or copy that skipped it, an operator's
// rm, a lost directory entry); Open.
//
// Observed: Open succeeds with only the 6 keys of the snapshot; the 6 keys
// acknowledged after it are gone without an error, and a fresh log-1 is
// made over the evidence. Expected: a *CorruptError (or another refusal)
// naming the log the marker records, as for a shorter log.
//
// Root cause: filestore.go load(): the marker is consulted only inside the
// loop over logs that exist (`last && cleanLog == logName(g)`); a marker
// naming a log that is not there is never compared, and the store creates
// the log anew (createLog) and removes the marker.
func TestReviewNewestLogLostAfterCleanShutdown(t *testing.T) {
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

// TestReviewSnapshotLostOpensWithoutItsKeys (review3). Promise (filestore.go
// package doc: "any damage to an older log or to a snapshot ... stops Open
// with a *CorruptError"; SECURITY.md: after a clean shutdown nothing may be
// cut at all).
//
// Reproduction: Open, 6 keys, Compact (snapshot-1 holds them, log-0 is
// removed, log-1 starts), 6 more keys, a clean Close; snapshot-1 goes
// missing; Open.
//
// Observed: Open succeeds with the 6 keys of log-1 only; the 6 keys the
// snapshot held are gone without an error (their instances get "unknown"),
// and the pepper fingerprint the snapshot carried is gone with them: the
// Open here is under ANOTHER pepper's fingerprint, and adopts it. Expected: refused. A log of generation N > 0
// with no snapshot N is always damage: compact() renames snapshot N into
// place before it creates log N, so neither a crash nor a clean shutdown
// leaves one.
//
// Root cause: filestore.go load(): base is the newest snapshot found, or 0
// when there is none, and every log >= base is replayed; nothing checks
// that the oldest replayed log's generation equals base.
func TestReviewSnapshotLostOpensWithoutItsKeys(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quiet(), PepperFingerprint: "fp-one"})
	is.NoErr(err)
	fill(t, s, 6)
	is.NoErr(s.Compact())
	fill(t, s, 6)
	is.NoErr(s.Close())
	is.NoErr(os.Remove(filepath.Join(dir, snapshotName(1))))
	s2, err := Open(dir, Options{Logger: quiet(), PepperFingerprint: "fp-two"}) // another pepper, even
	if err == nil {
		t.Logf("opened under another pepper with %d keys of 12, fingerprint now %q", s2.bulk.Len(), s2.fingerprint)
		s2.Close()
	}
	is.True(err != nil) // snapshot-1 held 6 acknowledged keys
}
