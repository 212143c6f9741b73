package scan

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// A Finding is one key found: where it is, and the key masked.
type Finding struct {
	Name   string // the file's path as walked, or the name given to Named
	Line   int    // 1-based
	Masked string // first 8 characters, "...", last 8 characters
}

// String returns the finding as "name:line: masked", the form compilers and
// editors understand.
func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.Name, f.Line, f.Masked) }

// Named scans r, reporting its keys as found in a file called name.
func (s *Scanner) Named(name string, r io.Reader, found func(Finding)) error {
	return s.Reader(r, func(line int, masked string) {
		found(Finding{Name: name, Line: line, Masked: masked})
	})
}

// Paths scans each path in turn and calls found for each key, in order.
//
// A path that names a file (or a symbolic link to one, or a pipe) is read
// whatever its content: keys are reported in binary files too, because a key
// compiled into a binary or written into a database has leaked as surely as
// one in a text file. A path that names a directory (or a link to one) is
// walked in lexical order; in it, directories named .git are skipped,
// symbolic links are not followed (a link to a file inside the tree is
// scanned under the file's own name; one out of the tree is not this tree's
// business), and only regular files are read (never a device, pipe or
// socket).
//
// Each path or file that cannot be read is passed to failed, with its name in
// the error, and the scan goes on with the rest.
func (s *Scanner) Paths(paths []string, found func(Finding), failed func(error)) {
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			failed(err)
			continue
		}
		if !info.IsDir() {
			s.file(root, found, failed)
			continue
		}
		start := root
		if li, err := os.Lstat(root); err == nil && li.Mode()&fs.ModeSymlink != 0 {
			// WalkDir does not follow a link even at the root; a trailing
			// separator makes it, and names still begin with root.
			start = root + string(filepath.Separator)
		}
		filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				failed(err)
				return nil
			}
			switch {
			case d.IsDir():
				if d.Name() == ".git" && path != start {
					return filepath.SkipDir
				}
			case d.Type().IsRegular():
				s.file(path, found, failed)
			}
			return nil
		})
	}
}

// file scans one file.
func (s *Scanner) file(name string, found func(Finding), failed func(error)) {
	f, err := os.Open(name)
	if err != nil {
		failed(err)
		return
	}
	defer f.Close()
	if err := s.Named(name, f, found); err != nil {
		failed(err) // an *fs.PathError that names the file
	}
}
