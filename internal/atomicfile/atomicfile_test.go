package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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

func TestCreate(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pepper")
	is.NoErr(atomicfile.Create(path, []byte("one")))
	err := atomicfile.Create(path, []byte("two"))
	is.True(errors.Is(err, fs.ErrExist)) // never replaces
	b, err := os.ReadFile(path)
	is.NoErr(err)
	is.Equal(string(b), "one")
	fi, err := os.Stat(path)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600))

	racy := filepath.Join(dir, "racy")
	var wg sync.WaitGroup
	var created atomic.Int32
	for i := range 8 {
		wg.Go(func() {
			if err := atomicfile.Create(racy, []byte{byte('a' + i)}); err == nil {
				created.Add(1)
			} else if !errors.Is(err, fs.ErrExist) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	is.Equal(created.Load(), int32(1)) // of concurrent callers, exactly one creates the file
	entries, err := os.ReadDir(dir)
	is.NoErr(err)
	is.Equal(len(entries), 2) // no temporary file left behind
}
