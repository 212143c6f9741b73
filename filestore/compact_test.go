package filestore

import (
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/licensekit/licensing/storetest"
	"github.com/matryer/is"
)

// fdHogFile, once armed, uses up every free file descriptor right after the
// snapshot's temporary file is closed: the rename that follows needs none,
// the directory fsync (os.Open of the directory) fails with EMFILE. It
// stands for any error of the directory fsync after the rename (EIO).
type fdHogFile struct {
	file
	armed *atomic.Bool
	hog   *[]*os.File
	limit *syscall.Rlimit
}

func (f fdHogFile) Close() error {
	err := f.file.Close()
	if f.armed.CompareAndSwap(true, false) {
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, f.limit)
		ents, _ := os.ReadDir("/proc/self/fd")
		low := *f.limit
		low.Cur = uint64(len(ents) + 8)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low)
		for {
			h, err := os.Open(os.DevNull)
			if err != nil {
				break
			}
			*f.hog = append(*f.hog, h)
		}
	}
	return err
}

// Promise (compact, Compact's doc): "Errors before the snapshot is renamed
// into place leave the old files in charge; errors after it fail the store,
// since the old log no longer counts." writeSnapshot returns the directory
// fsync's error AFTER os.Rename put snapshot-1 in place; compact treats it
// as "before" and keeps appending to log-0, which the next Open ignores
// (log-0 < snapshot-1) and deletes: acknowledged writes are lost, silently
// (the clean marker names log-0, "an older generation", ignored).
// Root cause: filestore/filestore.go writeSnapshot (syncDir error after
// Rename) + compact's first error branch keeping the store writable.
func TestCompactionFailureAfterRenameFailsTheStore(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	var armed atomic.Bool
	var hog []*os.File
	var limit syscall.Rlimit
	s := open(t, dir, Options{wrapFile: func(f file) file { return fdHogFile{f, &armed, &hog, &limit} }})
	fill(t, s, 5)
	armed.Store(true)
	err := s.Compact()
	for _, h := range hog {
		h.Close()
	}
	if limit.Max != 0 {
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit)
	}
	t.Logf("Compact: %v; store err: %v", err, s.Err())
	is.True(err != nil) // the directory fsync failed
	_, statErr := os.Stat(dir + "/" + snapshotName(1))
	t.Logf("snapshot-1 in place: %v", statErr == nil)
	k := storetest.NewKey("org-after", base)
	if cerr := s.CreateKey(ctx, k); cerr != nil {
		t.Logf("create refused after the failed compaction: %v (the promise held)", cerr)
		return
	}
	// The create was acknowledged: it must survive a restart.
	is.NoErr(s.Close())
	s2, err := Open(dir, Options{Logger: quiet()})
	is.NoErr(err)
	defer s2.Close()
	_, err = s2.KeyByID(ctx, k.ID)
	is.NoErr(err) // an acknowledged key is lost after the reopen
}
