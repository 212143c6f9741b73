package scan

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A Finding is one key found: where it is, and the key masked.
type Finding struct {
	// Name is the file's path as walked, or the name given to Named, with
	// every key in it masked (see MaskKeys).
	Name string
	// Line is the 1-based number of the line the key is on, or 0 when the
	// key is in the path itself (Name is then the path of the file,
	// directory or link whose own name holds the key, masked).
	Line   int
	Masked string // first 8 characters, "...", last 8 characters
}

// String returns the finding as "name:line: masked", the form compilers and
// editors understand, or "name: masked (in the path)" for a key in a path.
// Every key in the name is masked, even in a Finding not made by this
// package, and a name that is not plain printable text is quoted (see
// QuoteName), so that a finding is always one line and never an escape
// sequence.
func (f Finding) String() string {
	if f.Line == 0 {
		return fmt.Sprintf("%s: %s (in the path)", QuoteName(MaskKeys(f.Name)), f.Masked)
	}
	return fmt.Sprintf("%s:%d: %s", QuoteName(MaskKeys(f.Name)), f.Line, f.Masked)
}

// QuoteName returns name as the scanner prints it: as it is when it is
// valid UTF-8 of printable characters (spaces included) that does not start
// with a double quote, else quoted as a Go string (strconv.Quote: "\n",
// "\r", "\x1b", "\xff", "\u202e"), so that a file name can neither start
// a line of its own (forging a finding), nor move the cursor, colour or
// retitle a terminal, nor reorder text; a quoted name starts with a double
// quote, which a plain one never does. A key that the quoting completes
// (the hex digits of an escape such as \xab before the rest of a key) is
// masked, as MaskKeys masks it.
func QuoteName(name string) string {
	if strings.HasPrefix(name, `"`) || !printable(name) {
		return MaskKeys(strconv.Quote(name))
	}
	return name
}

// printable reports whether s is valid UTF-8 of printable characters.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !strconv.IsPrint(r) {
			return false // RuneError: invalid UTF-8 (or U+FFFD itself, quoted too)
		}
	}
	return true
}

// Named scans r, reporting its keys as found in a file called name (with any
// key in name masked). The name itself is not reported: Paths does that.
func (s *Scanner) Named(name string, r io.Reader, found func(Finding)) error {
	name = MaskKeys(name)
	return s.Reader(r, func(line int, masked string) {
		found(Finding{Name: name, Line: line, Masked: masked})
	})
}

// MaskKeys returns s with every key in it masked: the characters of each key
// but its first and last 8 are replaced by "..." (once for a run of them, so
// keys that overlap show no more). A key is what Scanner finds: 64 hex
// characters with a valid checksum, whatever surrounds them. Other
// characters are left as they are, so a path stays recognisable.
func MaskKeys(s string) string {
	var hide []bool // hide[j]: s[j] is in the middle of a key
	for _, k := range keysIn(s) {
		if hide == nil {
			hide = make([]bool, len(s))
		}
		for j := k + maskEdge; j < k+KeyLength-maskEdge; j++ {
			hide[j] = true
		}
	}
	if hide == nil {
		return s
	}
	var b strings.Builder
	for j := 0; j < len(s); j++ {
		if !hide[j] {
			b.WriteByte(s[j])
		} else if j == 0 || !hide[j-1] {
			b.WriteString("...")
		}
	}
	return b.String()
}

// keysIn returns where each key in s starts, in order; short strings such as
// paths are what it is for.
func keysIn(s string) []int {
	var at []int
	run := 0 // hex characters ending at s[j]
	for j := 0; j < len(s); j++ {
		if class[s[j]]&isHex == 0 {
			run = 0
			continue
		}
		run++
		if k := j + 1 - KeyLength; run >= KeyLength && bodyCRC([]byte(s[k:k+bodyLength])) == sumOf([]byte(s[k+bodyLength:j+1])) {
			at = append(at, k)
		}
	}
	return at
}

// maskedKeysIn returns the masked form of each key in s, in order.
func maskedKeysIn(s string) []string {
	var out []string
	for _, k := range keysIn(s) {
		out = append(out, mask([]byte(s[k:k+KeyLength])))
	}
	return out
}

// pathError masks the keys in an error's text and quotes the path of an
// *fs.PathError as QuoteName does; Unwrap gives the error itself, for
// errors.Is and errors.As.
type pathError struct{ err error }

func (e pathError) Error() string {
	if pe, ok := e.err.(*fs.PathError); ok {
		return pe.Op + " " + QuoteName(MaskKeys(pe.Path)) + ": " + MaskKeys(pe.Err.Error())
	}
	return MaskKeys(e.err.Error())
}
func (e pathError) Unwrap() error { return e.err }

// maskErr returns err with every key in its text masked, and its path
// quoted when it is not plain printable text.
func maskErr(err error) error {
	pe, ok := err.(*fs.PathError)
	if len(keysIn(err.Error())) == 0 && (!ok || QuoteName(pe.Path) == pe.Path) {
		return err
	}
	return pathError{err}
}

// Paths scans each path in turn and calls found for each key, in order.
//
// A key in a path is a leak too (a file or directory named after a key): it
// is reported as a Finding with Line 0, before the file's content, for a path
// given in paths (the whole path) and for each entry of a walked directory
// whose own name holds one (whatever its type: a link, a pipe or a
// directory that is skipped are reported too, though not read).
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
// the error (every key in the error's text masked; errors.Is and errors.As
// see the error itself), and the scan goes on with the rest.
func (s *Scanner) Paths(paths []string, found func(Finding), failed0 func(error)) {
	failed := func(err error) { failed0(maskErr(err)) }
	inName := func(path, name string) {
		for _, m := range maskedKeysIn(name) {
			found(Finding{Name: MaskKeys(path), Masked: m})
		}
	}
	for _, root := range paths {
		inName(root, root)
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
			if path != start {
				inName(path, d.Name())
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
