package scan_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/licensekit/licensing/internal/scan"
	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// newKey returns a fresh valid key.
func newKey(t testing.TB) string {
	t.Helper()
	k, err := wire.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// badChecksum returns key with its checksum broken.
func badChecksum(key string) string {
	last := key[63]
	c := byte('0')
	if last == '0' {
		c = '1'
	}
	return key[:63] + string(c)
}

// findings scans data with sc and returns "line: masked" for each key.
func findings(t testing.TB, sc *scan.Scanner, r io.Reader) []string {
	t.Helper()
	var got []string
	err := sc.Reader(r, func(line int, masked string) {
		got = append(got, fmt.Sprintf("%d: %s", line, masked))
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func at(line int, key string) string {
	return fmt.Sprintf("%d: %s", line, wire.MaskKey(strings.ToLower(key)))
}

func TestReader(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	sha := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // SHA-256 of ""
	uuid := "0193a4f2-7c1e-7d2a-9b3c-4d5e6f708192"
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"alone", k1, []string{at(1, k1)}},
		{"empty input", "", nil},
		{"start and end of input", k1 + "\n" + k2, []string{at(1, k1), at(2, k2)}},
		{"line numbers", "a\nb\n\nx = " + k1 + "\n", []string{at(4, k1)}},
		{"upper case", strings.ToUpper(k1), []string{at(1, k1)}},
		{"mixed case", strings.ToUpper(k1[:30]) + k1[30:], []string{at(1, k1)}},
		{"double quotes", `key := "` + k1 + `"`, []string{at(1, k1)}},
		{"single quotes", `'` + k1 + `'`, []string{at(1, k1)}},
		{"json", `{"key":"` + k1 + `","n":1}`, []string{at(1, k1)}},
		{"url", "https://licensing.example.com/validate?key=" + k1 + "&x=1", []string{at(1, k1)}},
		{"env", "LICENSE_KEY=" + k1, []string{at(1, k1)}},
		{"underscore and dash separate", "lk_" + k1 + " key-" + k2, []string{at(1, k1), at(1, k2)}},
		{"two on a line", k1 + " " + k2, []string{at(1, k1), at(1, k2)}},
		{"crlf", "one\r\ntwo " + k1 + "\r\nthree\r\n" + k2 + "\r\n", []string{at(2, k1), at(4, k2)}},
		{"json escape newline", `{"msg":"here it is:\n` + k1 + `\tthanks"}`, []string{at(1, k1)}},
		{"json escapes r and t", `"\r` + k1 + `" "\t` + k2 + `"`, []string{at(1, k1), at(1, k2)}},
		{"percent escape", "text=the%20key%3A%20" + k1 + "%0A", []string{at(1, k1)}},
		{"tab and nul around", "\x00\t" + k1 + "\x00", []string{at(1, k1)}},
		{"utf-8 around", "clé«" + k1 + "»", []string{at(1, k1)}},

		{"wrong checksum", badChecksum(k1), nil},
		{"sha-256 sum", sha + "  empty.txt\n", nil},
		{"uuids", uuid + " " + strings.ReplaceAll(uuid, "-", ""), nil},
		{"63 hex", k1[:63], nil},
		{"63 hex in a long run", strings.Repeat("0", 100) + badChecksum(k1) + strings.Repeat(badChecksum(k1)[63:], 100), nil},
		{"long hex run of no key", strings.Repeat("0123456789abcdef", 100), nil},
		{"split across lines", k1[:32] + "\n" + k1[32:], nil},
		{"split across crlf", k1[:32] + "\r\n" + k1[32:], nil},
		{"split by a space", k1[:32] + " " + k1[32:], nil},

		// No boundary is needed: the checksum decides.
		{"128 hex of two valid keys", k1 + k2, []string{at(1, k1), at(1, k2)}},
		{"65 hex", k1 + "a", []string{at(1, k1)}},
		{"65 hex before", "a" + k1, []string{at(1, k1)}},
		{"inside a long hex run", sha + k1 + sha, []string{at(1, k1)}},
		{"letter before (identifier)", "x" + k1, []string{at(1, k1)}},
		{"letter after", k1 + "g", []string{at(1, k1)}},
		{"0x prefix", "0x" + k1, []string{at(1, k1)}},
		{"n without backslash", "n" + k1, []string{at(1, k1)}},
		{"escape of another letter", `\q` + k1, []string{at(1, k1)}},
		{"percent with one hex", "%3" + k1, []string{at(1, k1)}},
		{"percent with three hex", "%3AB" + k1, []string{at(1, k1)}},
		{"json with Go HTML escaping", `{"body":"\u003ccode\u003e` + k1 + `\u003c/code\u003e"}` + "\n", []string{at(1, k1)}},
		{"ANSI-coloured log line", "created key: \x1b[1;32m" + k1 + "\x1b[0m\n", []string{at(1, k1)}},
		{"minified JS hex escape", `var q="key\x3d` + k1 + `";`, []string{at(1, k1)}},
		{"quoted-printable mail", "Content-Transfer-Encoding: quoted-printable\n\nLICENSE_KEY=3D" + k1 + "\n", []string{at(3, k1)}},
		{"key between its own halves", k1[:32] + k1 + k1[32:], []string{at(1, k1)}},
		{"hex run of 200 then key", strings.Repeat("ab", 100) + " " + k1, []string{at(1, k1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			var sc scan.Scanner
			is.Equal(findings(t, &sc, strings.NewReader(tc.in)), tc.want) // whole input at once
			one := findings(t, &sc, iotest.OneByteReader(strings.NewReader(tc.in)))
			is.Equal(one, tc.want) // one byte per read
			half := findings(t, &sc, iotest.HalfReader(strings.NewReader(tc.in)))
			is.Equal(half, tc.want) // short reads
		})
	}
}

// TestBlockBoundary plants keys and traps at every offset around the end of
// the first and second blocks.
func TestBlockBoundary(t *testing.T) {
	key := newKey(t)
	sc := scan.Scanner{BlockSize: 4096}
	for _, size := range []int{scan.MinBlockSize, 4096} {
		sc.BlockSize = size
		for _, block := range []int{size, 2*size - 68} { // after one block, and after the first carry
			for off := max(block-140, 0); off <= block+4; off++ {
				t.Run(fmt.Sprintf("size=%d/offset=%d", size, off), func(t *testing.T) {
					is := is.New(t)
					pad := []byte(strings.Repeat("z\n", off/2))
					if off%2 == 1 {
						pad = append(pad, ' ')
					}
					lines := bytes.Count(pad, []byte("\n"))
					cases := []struct {
						in   string
						want []string
					}{
						{string(pad) + key, []string{at(lines+1, key)}},
						{string(pad) + key + "\nnext", []string{at(lines+1, key)}},
						{string(pad) + strings.ToUpper(key) + "\"", []string{at(lines+1, key)}},
						{string(pad) + key + "0", []string{at(lines+1, key)}},
						{string(pad) + key[1:] + "\n" + key[:63], nil},
						{string(pad) + key + key + " " + key, []string{at(lines+1, key), at(lines+1, key), at(lines+1, key)}},
						{string(pad) + strings.Repeat("0", 100) + key + "0", []string{at(lines+1, key)}},
						{string(pad) + "%3D" + key, []string{at(lines+1, key)}},
						{string(pad) + "\\n" + key, []string{at(lines+1, key)}},
						{string(pad) + "x" + key + "\n" + key, []string{at(lines+1, key), at(lines+2, key)}},
						{string(pad) + key[:40] + "\r\n" + key[40:] + "\n" + key, []string{at(lines+3, key)}},
					}
					for _, c := range cases {
						got := findings(t, &sc, strings.NewReader(c.in))
						is.Equal(got, c.want) // key at the block boundary
					}
				})
			}
		}
	}
}

// TestHugeLine scans 5 MB lines of hex with keys after and inside them: no
// line-length limit, every window of a long run is checked, and the rest of
// the run is no key.
func TestHugeLine(t *testing.T) {
	is := is.New(t)
	key := newKey(t)
	long := strings.Repeat("0123456789abcdef", 5<<20/16)
	in := long + " " + key + " " + long + "\n" + long + key + "\n" + key
	var sc scan.Scanner
	is.Equal(findings(t, &sc, strings.NewReader(in)), []string{at(1, key), at(2, key), at(3, key)})
}

// TestReadError reports keys found before a read error and then the error.
func TestReadError(t *testing.T) {
	is := is.New(t)
	key := newKey(t)
	r := io.MultiReader(strings.NewReader(key+"\n"), iotest.ErrReader(io.ErrUnexpectedEOF))
	var sc scan.Scanner
	var got []string
	err := sc.Reader(r, func(line int, masked string) { got = append(got, masked) })
	is.Equal(err, io.ErrUnexpectedEOF)            // the read error is returned
	is.Equal(len(got), 1)                         // the key before it is reported
	is.True(!strings.Contains(got[0], key[8:56])) // masked only
}

func TestNilFound(t *testing.T) {
	is := is.New(t)
	var sc scan.Scanner
	is.True(sc.Reader(strings.NewReader("x"), nil) != nil) // nil found is an error
}

func ExampleScanner_Reader() {
	// The key is split in two here so that scanning this repository (as
	// .ci/run does) finds nothing.
	key := "2b2d5fcd1a8e2f1f4ee8c0e1c4d5a4d2" + "3c86f03a58e3b4e6d0a5d6aa7b4b92dd"
	text := "LICENSE_KEY=" + key + "\n" +
		"sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
	var sc scan.Scanner
	sc.Reader(strings.NewReader(text), func(line int, masked string) {
		fmt.Printf("line %d: %s\n", line, masked)
	})
	// Output:
	// line 1: 2b2d5fcd...7b4b92dd
}

// TestLongRunAgreesWithReference plants keys, upper and lower case, at every
// offset mod 64 inside one long hex run, where each window's checksum is
// rolled on from the previous one, and compares with the reference.
func TestLongRunAgreesWithReference(t *testing.T) {
	is := is.New(t)
	var b strings.Builder
	for off := range 70 {
		b.WriteString(strings.Repeat("f0e1d2c3b4a59687", off/16+1)[:off])
		k := newKey(t)
		if off%3 == 0 {
			k = strings.ToUpper(k)
		}
		b.WriteString(k)
	}
	in := b.String()
	want := reference([]byte(in))
	is.True(len(want) >= 70) // every planted key (and any chance window)
	for _, size := range []int{0, scan.MinBlockSize, 1000} {
		sc := scan.Scanner{BlockSize: size}
		is.Equal(findings(t, &sc, strings.NewReader(in)), want)                       // one read
		is.Equal(findings(t, &sc, iotest.OneByteReader(strings.NewReader(in))), want) // byte by byte
	}
}
