package scan_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/licensekit/licensing/internal/scan"
	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// writeTree creates files (path -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// walk scans paths and returns the findings and the errors as strings.
func walk(paths ...string) (found, failed []string) {
	var sc scan.Scanner
	sc.Paths(paths, func(f scan.Finding) {
		found = append(found, f.String())
	}, func(err error) {
		failed = append(failed, err.Error())
	})
	return found, failed
}

func TestPaths(t *testing.T) {
	is := is.New(t)
	keys := make([]string, 8)
	for i := range keys {
		keys[i] = newKey(t)
	}
	mask := func(k string) string { return wire.MaskKey(strings.ToLower(k)) }
	dir := t.TempDir()
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.txt": keys[7]})
	writeTree(t, dir, map[string]string{
		"config/app.env": "# settings\r\nLICENSE_KEY=" + keys[0] + "\r\nDEBUG=1\r\n",
		"src/main.go": "package main\n\n// sum of the release: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" +
			"var id = \"0193a4f2-7c1e-7d2a-9b3c-4d5e6f708192\"\n" +
			"var wrong = \"" + badChecksum(keys[1]) + "\"\n" +
			"var long = \"" + keys[1] + keys[2] + "\"\n" +
			"var split = \"" + keys[3][:32] + "\" +\n\t\"" + keys[3][32:] + "\"\n" +
			"var key = \"" + strings.ToUpper(keys[1]) + "\"\n",
		"logs/server.log": `{"msg":"created","key":"` + keys[2] + `"}` + "\n",
		"data/blob.bin":   "\x00\x01\x02" + keys[4] + "\x00\xff",
		"empty":           "",
		"edge.txt":        keys[5] + "\nmiddle\n" + keys[6],
		".git/config":     keys[3],
		"sub/.git/HEAD":   keys[3],
	})
	is.NoErr(os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "link-out.txt")))
	is.NoErr(os.Symlink(outside, filepath.Join(dir, "link-dir")))
	is.NoErr(os.Symlink("edge.txt", filepath.Join(dir, "link-in.txt")))

	found, failed := walk(dir, filepath.Join(dir, "missing"))
	p := func(name string) string { return filepath.Join(dir, name) }
	is.Equal(found, []string{
		p("config/app.env") + ":2: " + mask(keys[0]),
		p("data/blob.bin") + ":1: " + mask(keys[4]),
		p("edge.txt") + ":1: " + mask(keys[5]),
		p("edge.txt") + ":3: " + mask(keys[6]),
		p("logs/server.log") + ":1: " + mask(keys[2]),
		p("src/main.go") + ":6: " + mask(keys[1]),
		p("src/main.go") + ":6: " + mask(keys[2]),
		p("src/main.go") + ":9: " + mask(keys[1]),
	}) // every planted key, in lexical order, and nothing else
	is.Equal(len(failed), 1)                        // the missing path
	is.True(strings.Contains(failed[0], "missing")) // the error names the path
	for _, f := range found {
		for _, k := range keys {
			is.True(!strings.Contains(f, strings.ToLower(k)[8:56])) // never the full key
		}
	}
}

func TestPathsNamed(t *testing.T) {
	is := is.New(t)
	key := newKey(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.txt": key, ".git/config": key})
	target := filepath.Join(dir, "a.txt")
	link := filepath.Join(dir, "link")
	is.NoErr(os.Symlink(target, link))

	dirLink := filepath.Join(t.TempDir(), "tree")
	is.NoErr(os.Symlink(dir, dirLink))

	found, failed := walk(link, filepath.Join(dir, ".git"), dirLink)
	is.Equal(failed, nil) // nothing failed
	is.Equal(found, []string{
		link + ":1: " + wire.MaskKey(key),
		filepath.Join(dir, ".git", "config") + ":1: " + wire.MaskKey(key),
		filepath.Join(dirLink, "a.txt") + ":1: " + wire.MaskKey(key),
	}) // a link, a .git directory or a link to a directory named on the command line is scanned
}

func TestPathsUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads everything")
	}
	is := is.New(t)
	key := newKey(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"locked/a.txt": key, "open/b.txt": key, "secret.txt": key})
	is.NoErr(os.Chmod(filepath.Join(dir, "locked"), 0))
	is.NoErr(os.Chmod(filepath.Join(dir, "secret.txt"), 0))
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "locked"), 0o755) })

	found, failed := walk(dir)
	is.Equal(found, []string{filepath.Join(dir, "open", "b.txt") + ":1: " + wire.MaskKey(key)}) // the rest is scanned
	is.Equal(len(failed), 2)                                                                    // the locked directory and file
}

// TestPathsError checks that errors are *fs.PathError naming the path.
func TestPathsError(t *testing.T) {
	is := is.New(t)
	var sc scan.Scanner
	var got error
	sc.Paths([]string{filepath.Join(t.TempDir(), "nope")}, func(scan.Finding) {}, func(err error) { got = err })
	var pe *fs.PathError
	is.True(errors.As(got, &pe))            // a path error
	is.True(errors.Is(got, fs.ErrNotExist)) // that says what went wrong
}

// TestPathsReadError reads a file that opens but fails to read (on Linux,
// /proc/self/mem at offset 0), which works even as root, and goes on.
func TestPathsReadError(t *testing.T) {
	if _, err := os.Stat("/proc/self/mem"); err != nil {
		t.Skip("no /proc/self/mem")
	}
	is := is.New(t)
	key := newKey(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.txt": key})
	found, failed := walk("/proc/self/mem", dir)
	is.Equal(len(failed), 1)                               // the read error
	is.True(strings.Contains(failed[0], "/proc/self/mem")) // names the file
	is.Equal(len(found), 1)                                // the rest is scanned
}

// TestPathsKeyInPath: a file, directory or link named after a key is a leak,
// reported once (Line 0, before the content), and no path or error printed
// ever holds the key in full.
func TestPathsKeyInPath(t *testing.T) {
	is := is.New(t)
	kDir, kFile, kLink, kInside, kRoot, kMissing := newKey(t), newKey(t), newKey(t), newKey(t), newKey(t), newKey(t)
	m := func(k string) string { return wire.MaskKey(strings.ToLower(k)) }
	base := t.TempDir()
	dir := filepath.Join(base, "export-"+kRoot)
	writeTree(t, dir, map[string]string{
		"licenses/" + kDir + "/license.env":         "KEY=" + kInside + "\n",
		"cache/" + strings.ToUpper(kFile) + ".json": "{}",
		"plain.txt": "nothing\n",
	})
	is.NoErr(os.Symlink("plain.txt", filepath.Join(dir, "link-"+kLink)))
	missing := filepath.Join(base, kMissing)

	found, failed := walk(dir, missing)
	p := func(name string) string { return MaskPath(filepath.Join(dir, filepath.FromSlash(name))) }
	is.Equal(found, []string{
		MaskPath(dir) + ": " + m(kRoot) + " (in the path)",
		p("cache/"+strings.ToUpper(kFile)+".json") + ": " + m(kFile) + " (in the path)",
		p("licenses/"+kDir) + ": " + m(kDir) + " (in the path)",
		p("licenses/"+kDir+"/license.env") + ":1: " + m(kInside),
		p("link-"+kLink) + ": " + m(kLink) + " (in the path)",
		MaskPath(missing) + ": " + m(kMissing) + " (in the path)",
	}) // every key in a name, once, and the key in the content, all in order
	is.Equal(len(failed), 1) // the missing path
	is.True(strings.Contains(failed[0], m(kMissing)[:8]))
	out := strings.Join(append(found, failed...), "\n")
	for _, k := range []string{kDir, kFile, kLink, kInside, kRoot, kMissing} {
		is.True(!strings.Contains(strings.ToLower(out), strings.ToLower(k)[8:56])) // never a key's middle
	}
}

// MaskPath is scan.MaskKeys, named for what the tests above use it on.
func MaskPath(p string) string { return scan.MaskKeys(p) }

// TestPathsErrorMasked: an error about a path that holds a key is masked
// and still matches with errors.Is and errors.As.
func TestPathsErrorMasked(t *testing.T) {
	is := is.New(t)
	key := newKey(t)
	var sc scan.Scanner
	var got error
	sc.Paths([]string{filepath.Join(t.TempDir(), key, "x")}, func(scan.Finding) {}, func(err error) { got = err })
	is.True(!strings.Contains(got.Error(), key[8:56])) // masked
	is.True(strings.Contains(got.Error(), key[:8]+"..."+key[56:]+"/x"))
	var pe *fs.PathError
	is.True(errors.As(got, &pe))            // a path error
	is.True(errors.Is(got, fs.ErrNotExist)) // that says what went wrong
}

func TestMaskKeys(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	m := func(k string) string { return k[:8] + "..." + k[56:] }
	sha := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	cases := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"no key", "/srv/data/" + sha, "/srv/data/" + sha},
		{"whole", k1, m(k1)},
		{"in a path", "/a/" + k1 + "/b-" + k2 + ".json", "/a/" + m(k1) + "/b-" + m(k2) + ".json"},
		{"case kept", strings.ToUpper(k1), m(strings.ToUpper(k1))},
		{"glued to hex", "ab" + k1 + "cd", "ab" + m(k1) + "cd"},
		{"adjacent", k1 + k2, m(k1) + m(k2)},
		{"already masked", m(k1), m(k1)},
		{"broken checksum", badChecksum(k1), badChecksum(k1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			got := scan.MaskKeys(c.in)
			is.Equal(got, c.want)             // masked as documented
			is.Equal(scan.MaskKeys(got), got) // masking again changes nothing
		})
	}
}

// FuzzMaskKeys: whatever the input (keys planted, some overlapping the text
// before them), no key survives masking, and masking again changes nothing.
func FuzzMaskKeys(f *testing.F) {
	f.Add([]byte("/x/#/y"), uint8(3))
	f.Add([]byte("##"), uint8(40))
	f.Fuzz(func(t *testing.T, data []byte, overlap uint8) {
		is := is.New(t)
		in := string(plant(data))
		if k := strings.Index(in, "/"); k >= 0 && len(in) >= 64 {
			// a key that overlaps the text before it
			in = in[:k] + in[max(0, k-int(overlap)%64):]
		}
		out := scan.MaskKeys(in)
		var sc scan.Scanner
		sc.Reader(strings.NewReader(out), func(int, string) { t.Fatal("a key survived") })
		is.Equal(scan.MaskKeys(out), out) // idempotent
	})
}

func ExampleMaskKeys() {
	// The key is split so that scanning this file finds nothing.
	key := "2b2d5fcd1a8e2f1f4ee8c0e1c4d5a4d2" + "3c86f03a58e3b4e6d0a5d6aa7b4b92dd"
	fmt.Println(scan.MaskKeys("licenses/" + key + ".json"))
	// Output: licenses/2b2d5fcd...7b4b92dd.json
}

// TestPathsOddNames: a name holding a newline, a carriage return, an escape
// sequence or invalid UTF-8 is printed quoted, so a finding is one line and
// reaches the terminal as text; so is one that starts with a double quote,
// so that a quoted name is never ambiguous. A plain name is left as it is.
func TestPathsOddNames(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	key := newKey(t)
	m := wire.MaskKey(strings.ToLower(key))
	names := map[string]string{ // name -> how it is printed, after dir + "/"
		"a\nb.txt":           `a\nb.txt`,
		"x.txt:1: " + m:      "", // printable: left as it is, on its own line
		"\x1b[31mred\x1b[0m": `\x1b[31mred\x1b[0m`,
		"c\rd.txt":           `c\rd.txt`,
		"\xff\xfe.txt":       `\xff\xfe.txt`,
		"\u202etxt.exe":      `\u202etxt.exe`,
		`"quoted.txt`:        "", // inside the directory: the path does not start with a quote
		"plain name.txt":     "",
	}
	var want []string
	for name, printed := range names {
		is.NoErr(os.WriteFile(filepath.Join(dir, name), []byte(key), 0o644))
		if printed == "" {
			want = append(want, filepath.Join(dir, name)+":1: "+m)
		} else {
			want = append(want, `"`+dir+"/"+printed+`":1: `+m)
		}
	}
	found, failed := walk(dir)
	is.Equal(len(failed), 0)
	slices.Sort(found)
	slices.Sort(want)
	is.Equal(found, want) // each odd name quoted
	for _, f := range found {
		is.True(!strings.ContainsAny(f, "\n\r\x1b\u202e")) // one line, no escape sequence
		is.True(utf8.ValidString(f))
	}

	t.Chdir(dir)
	found, _ = walk(`"quoted.txt`)
	is.Equal(found, []string{`"\"quoted.txt":1: ` + m}) // a path that starts with a quote is quoted

	_, failed = walk(filepath.Join(dir, "gone\n"+m+"\x1b[2J"))
	is.Equal(len(failed), 1)
	is.Equal(failed[0], `stat "`+dir+`/gone\n`+m+`\x1b[2J": no such file or directory`) // the error's path quoted too
}

// TestPathsEveryByteInAName: a name holding any byte (0x01 to 0xff, but
// the separator), a bidi or zero-width character, or the longest name a
// file system takes, is printed on one line of valid, printable UTF-8 that
// reads back (strconv.Unquote) as the path, in a finding and in an error.
// No key is printed whole either, even one that the quoting itself
// completes: a byte written as \xNN before 62 characters of a key whose
// first two are NN.
func TestPathsEveryByteInAName(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	key, content := newKey(t), newKey(t)
	for key[0] < '8' { // a first byte of 0x80 or more: invalid UTF-8 on its own, printed as \xNN
		key = newKey(t)
	}
	first, err := hex.DecodeString(key[:2])
	is.NoErr(err)
	completed := string(first) + key[2:] // a key completed by its own escape
	names := []string{
		"\u200b.txt", "a\u200dz.txt", "\u2066x\u2069.txt", "\u061c.txt", "\u200e\u200f.txt", "\ufeff.txt",
		"\u2028.txt", "\u0085.txt", "\u00a0.txt", "\U000e0001.txt", "\ue000.txt", strings.Repeat("n", 255), completed,
	}
	for b := 1; b < 256; b++ {
		if b != '/' {
			names = append(names, "x"+string([]byte{byte(b)})+"y")
		}
	}
	check := func(printed, path string) {
		t.Helper()
		if !utf8.ValidString(printed) || strings.ContainsFunc(printed, func(r rune) bool { return !strconv.IsPrint(r) }) {
			t.Fatalf("not printable: %q", printed)
		}
		if strings.Contains(strings.ToLower(printed), strings.ToLower(key)) {
			t.Fatalf("a whole key printed: %q", printed)
		}
		if strings.Contains(path, completed) {
			return // masked: it reads back as the masked path
		}
		if strings.HasPrefix(printed, `"`) {
			got, err := strconv.Unquote(printed)
			if err != nil || got != path {
				t.Fatalf("%q does not read back as %q (%v)", printed, path, err)
			}
		} else if printed != path {
			t.Fatalf("%q printed as %q", path, printed)
		}
	}
	m := wire.MaskKey(strings.ToLower(content))
	for _, name := range names {
		path := filepath.Join(dir, name)
		is.NoErr(os.WriteFile(path, []byte(content), 0o644))
		found, failed := walk(path, path+"/gone")
		is.Equal(len(found), 1)
		is.Equal(len(failed), 1)
		printed, ok := strings.CutSuffix(found[0], ":1: "+m)
		is.True(ok)
		check(printed, path)
		printed, ok = strings.CutPrefix(failed[0], "stat ")
		is.True(ok)
		printed, ok = strings.CutSuffix(printed, ": not a directory")
		is.True(ok)
		check(printed, path+"/gone")
	}
}
