package licensing_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

func TestLoadOrCreatePepper(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "pepper")
	first, err := licensing.LoadOrCreatePepper(path)
	is.NoErr(err)
	is.Equal(len(first), licensing.MinPepperLength)
	fi, err := os.Stat(path)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // a secret
	di, err := os.Stat(dir)
	is.NoErr(err)
	is.Equal(di.Mode().Perm(), os.FileMode(0o700))
	again, err := licensing.LoadOrCreatePepper(path)
	is.NoErr(err)
	is.True(bytes.Equal(again, first)) // kept, not made again
	entries, err := os.ReadDir(dir)
	is.NoErr(err)
	is.Equal(len(entries), 1) // no temporary file left behind
}

// TestLoadOrCreatePepperRefusesABadFile: an existing file that is not a
// pepper is refused, naming the path and the fix, and left as it is.
func TestLoadOrCreatePepperRefusesABadFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		want    string
	}{
		{"empty", "", "restore the original file"},
		{"short", strings.Repeat("ab", licensing.MinPepperLength-1) + "\n", "at least 32 bytes in hex"},
		{"not hex", strings.Repeat("zz", licensing.MinPepperLength), "at least 32 bytes in hex"},
		{"raw bytes", strings.Repeat("\x01", 64), "restore the original file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "pepper")
			is.NoErr(os.WriteFile(path, []byte(tc.content), 0o600))
			_, err := licensing.LoadOrCreatePepper(path)
			is.True(err != nil)
			is.True(strings.Contains(err.Error(), path))    // names the file
			is.True(strings.Contains(err.Error(), tc.want)) // and the fix
			b, _ := os.ReadFile(path)
			is.Equal(string(b), tc.content) // never replaced
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "pepper")
		is.NoErr(os.WriteFile(path, []byte(strings.Repeat("ab", 32)), 0o600))
		is.NoErr(os.Chmod(filepath.Dir(path), 0o300)) // the directory cannot be listed...
		is.NoErr(os.Chmod(path, 0))                   // ...nor the file read (except by root)
		defer os.Chmod(filepath.Dir(path), 0o700)
		_, err := licensing.LoadOrCreatePepper(path)
		if os.Geteuid() == 0 {
			is.NoErr(err) // root reads it all the same
			return
		}
		is.True(err != nil)
		is.True(strings.Contains(err.Error(), path))
		is.True(strings.Contains(err.Error(), "cannot be read; give this process read access"))
	})
	// What is at the path but is no pepper file is refused at once, naming
	// what it is, never waited on or read whole.
	for _, tc := range []struct {
		name string
		make func(path string) error
		want string
	}{
		{"a directory", func(path string) error { return os.Mkdir(path, 0o700) }, "is a directory, not a file"},
		{"a dangling symbolic link", func(path string) error { return os.Symlink(path+".gone", path) }, "is a symbolic link to a file that does not exist"},
		{"a large file", func(path string) error { return os.WriteFile(path, bytes.Repeat([]byte("ab"), 1<<20), 0o600) }, "is 2097152 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "pepper")
			is.NoErr(tc.make(path))
			_, err := licensing.LoadOrCreatePepper(path)
			is.True(err != nil)
			is.True(strings.Contains(err.Error(), path))    // names the path
			is.True(strings.Contains(err.Error(), tc.want)) // and what is there
			_, err = os.Lstat(path)
			is.NoErr(err) // left as it is
		})
	}
	t.Run("through a symbolic link", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		target := filepath.Join(dir, "mounted-secret")
		is.NoErr(os.WriteFile(target, []byte(strings.Repeat("ab", 32)+"\r\n"), 0o400))
		is.NoErr(os.Symlink(target, filepath.Join(dir, "pepper")))
		got, err := licensing.LoadOrCreatePepper(filepath.Join(dir, "pepper"))
		is.NoErr(err) // a secret mounted as a link (Kubernetes does) is read, CRLF and all
		is.True(bytes.Equal(got, bytes.Repeat([]byte{0xab}, 32)))
	})
	t.Run("the reference server's file", func(t *testing.T) {
		is := is.New(t)
		path := filepath.Join(t.TempDir(), "pepper")
		want := bytes.Repeat([]byte{0xa5}, 48)
		is.NoErr(os.WriteFile(path, []byte(" "+strings.Repeat("a5", 48)+"\n"), 0o600))
		got, err := licensing.LoadOrCreatePepper(path)
		is.NoErr(err)
		is.True(bytes.Equal(got, want)) // hex, surrounding space ignored, longer than the minimum accepted
	})
}

// TestLoadOrCreatePepperRace: callers racing to create the file all get
// the one pepper that was written.
func TestLoadOrCreatePepperRace(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "pepper")
	peppers := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range peppers {
		wg.Go(func() {
			p, err := licensing.LoadOrCreatePepper(path)
			if err != nil {
				t.Error(err)
			}
			peppers[i] = p
		})
	}
	wg.Wait()
	kept, err := licensing.LoadOrCreatePepper(path)
	is.NoErr(err)
	for _, p := range peppers {
		is.True(bytes.Equal(p, kept)) // every caller has the pepper on disk
	}
}
