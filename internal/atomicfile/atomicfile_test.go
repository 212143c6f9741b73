package atomicfile_test

import (
	"os"
	"path/filepath"
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
