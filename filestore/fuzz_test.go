package filestore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReplay opens a store whose live log holds arbitrary bytes: Open must
// either refuse with an error or open a store that accepts a write and
// reopens with the same contents; it must never panic.
func FuzzReplay(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir, Options{Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	fill(f, s, 4)
	s.Close()
	seed, err := os.ReadFile(filepath.Join(dir, logName(0)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add(append(seed, make([]byte, 40)...))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, log []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, logName(0)), log, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Options{Logger: quiet()})
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("not a CorruptError: %v", err)
			}
			return
		}
		want := dump(s)
		s.Close()
		s, err = Open(dir, Options{Logger: quiet()})
		if err != nil {
			t.Fatalf("a store that opened once does not reopen: %v", err)
		}
		defer s.Close()
		if got := dump(s); got != want {
			t.Fatalf("reopened with other contents")
		}
	})
}
