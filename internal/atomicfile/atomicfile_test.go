package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestCreateKilledLeavesNoFile: a process killed while it creates files
// (a server killed during its first start, on a shared -signing-key
// directory that no start cleans) leaves each file whole or absent, and no
// temporary file holding a private key beside them. The child process
// creates files in a loop until it is killed.
func TestCreateKilledLeavesNoFile(t *testing.T) {
	if dir := os.Getenv("ATOMICFILE_CREATE_LOOP"); dir != "" {
		data := []byte(strings.Repeat("k", 4096))
		for i := 0; ; i++ {
			if err := atomicfile.Create(filepath.Join(dir, strconv.Itoa(i)), data); err != nil {
				t.Fatal(err)
			}
		}
	}
	is := is.New(t)
	for round := range 5 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCreateKilledLeavesNoFile$")
		cmd.Env = append(os.Environ(), "ATOMICFILE_CREATE_LOOP="+dir)
		is.NoErr(cmd.Start())
		for {
			entries, err := os.ReadDir(dir)
			is.NoErr(err)
			if len(entries) > 10+round*7 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		is.NoErr(cmd.Process.Kill())
		cmd.Wait()
		entries, err := os.ReadDir(dir)
		is.NoErr(err)
		for _, e := range entries {
			is.True(!strings.HasPrefix(e.Name(), ".tmp-")) // no temporary file left behind
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			is.NoErr(err)
			is.Equal(len(b), 4096) // every file whole
		}
	}
}
