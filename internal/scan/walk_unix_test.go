//go:build unix

package scan_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// TestPathsSkipsFIFO walks a tree holding a named pipe that nobody writes:
// opening it would block the scan for ever.
func TestPathsSkipsFIFO(t *testing.T) {
	is := is.New(t)
	key := newKey(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"z.txt": key})
	is.NoErr(syscall.Mkfifo(filepath.Join(dir, "a.fifo"), 0o600))
	found, failed := walk(dir)
	is.Equal(failed, nil)                                                               // nothing failed
	is.Equal(found, []string{filepath.Join(dir, "z.txt") + ":1: " + wire.MaskKey(key)}) // the pipe was not opened
}
