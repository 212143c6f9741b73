package atomicfile_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	is.NoErr(atomicfile.Write(path, []byte("one")))
	is.NoErr(atomicfile.Write(path, []byte("two"))) // replaces
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(string(b), "two")
	fi, err := os.Stat(path)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600))
	entries, err := os.ReadDir(dir)
	is.NoErr(err)
	is.Equal(len(entries), 1)                                                 // no temporary file left behind
	is.True(atomicfile.Write(filepath.Join(dir, "missing", "x"), nil) != nil) // a missing directory is an error
}

// TestWriteNewRace: many writers create one path at once; exactly one
// wins, every other gets fs.ErrExist, and the file holds the winner's data,
// whole, with no temporary file left.
func TestWriteNewRace(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "signing-ed25519.pem")
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = atomicfile.WriteNew(path, bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10))
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			is.Equal(winner, -1) // exactly one winner
			winner = i
			continue
		}
		is.True(errors.Is(err, fs.ErrExist)) // the others are told the file exists
	}
	is.True(winner >= 0)
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.True(bytes.Equal(b, bytes.Repeat([]byte{byte('a' + winner%26)}, 64<<10))) // the winner's data, whole
	fi, err := os.Stat(path)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600))
	entries, err := os.ReadDir(dir)
	is.NoErr(err)
	is.Equal(len(entries), 1)                                               // no temporary file left behind
	is.True(errors.Is(atomicfile.WriteNew(path, []byte("x")), fs.ErrExist)) // never replaces
}
