package scan_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf16"

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

// TestASCIIKeyAfterABOM: input that starts FF FE or FE FF is read as UTF-16
// and as it is, so a plain key after such a prefix (a binary whose header
// starts FF FE, a UTF-16 log with UTF-8 lines appended, two bytes put there
// on purpose) is found.
func TestASCIIKeyAfterABOM(t *testing.T) {
	is := is.New(t)
	key := newKey(t)
	cases := []struct {
		name string
		in   []byte
	}{
		{"FF FE then ASCII", append([]byte{0xff, 0xfe}, "\nKEY="+key+"\n"...)},
		{"FE FF then ASCII", append([]byte{0xfe, 0xff}, "\nKEY="+key+"\n"...)},
		{"FF FE binary header then ASCII", append([]byte{0xff, 0xfe, 0x00, 0x01, 0x02}, "xx "+key+" yy"...)},
		{"UTF-16 log, UTF-8 line appended", append([]byte(encodeUTF16("hello\n", binary.LittleEndian, bomLE)), "KEY="+key+"\n"...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			var sc scan.Scanner
			got := findings(t, &sc, bytes.NewReader(c.in))
			is.Equal(len(got), 1) // the ASCII key must be found
			if len(got) == 1 {
				is.True(strings.HasSuffix(got[0], key[56:]))
			}
		})
	}
	_ = is
}

// encodeUTF16 encodes s as UTF-16 in the given byte order, after bom.
func encodeUTF16(s string, order binary.ByteOrder, bom []byte) string {
	var b bytes.Buffer
	b.Write(bom)
	for _, u := range utf16.Encode([]rune(s)) {
		binary.Write(&b, order, u)
	}
	return b.String()
}

var (
	bomLE = []byte{0xff, 0xfe}
	bomBE = []byte{0xfe, 0xff}
)

// TestReaderUTF16 covers text in UTF-16, as Windows PowerShell 5 writes
// `echo $key > .env` (UTF-16LE with a byte order mark): with a byte order
// mark it is read as UTF-16, without one it is not (as documented).
func TestReaderUTF16(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	le, be := binary.LittleEndian, binary.BigEndian
	cases := []struct {
		name string
		in   string
		want []string
	}{
		{"UTF-16LE .env", encodeUTF16("LICENSE_KEY="+k1+"\r\n", le, bomLE), []string{at(1, k1)}},
		{"UTF-16BE", encodeUTF16("LICENSE_KEY="+k1+"\r\n", be, bomBE), []string{at(1, k1)}},
		{"lines and upper case", encodeUTF16("a\r\nb\n"+strings.ToUpper(k1)+"\n\n"+k2, le, bomLE), []string{at(3, k1), at(5, k2)}},
		{"non-ASCII around", encodeUTF16("clé «"+k1+"» 鍵"+k2+"😀", le, bomLE), []string{at(1, k1), at(1, k2)}},
		// A code unit whose low byte is a hex digit but whose high byte is
		// not zero (U+0130, U+4E30) is not that digit.
		{"non-ASCII code units with hex low bytes", encodeUTF16(k1[:30]+"\u0130"+k1[31:]+" "+k1[:63]+"\u4e30", le, bomLE), nil},
		{"odd length", encodeUTF16(k1, le, bomLE) + "\x00", []string{at(1, k1)}},
		{"only a byte order mark", string(bomLE), nil},
		{"key split by a code unit", encodeUTF16(k1[:32]+"\u2028"+k1[32:], le, bomLE), nil},
		// Documented: without a byte order mark, UTF-16 is read as bytes.
		{"UTF-16LE without BOM is not covered", encodeUTF16("LICENSE_KEY="+k1+"\r\n", le, nil), nil},
		// Bytes that only look like a byte order mark after the start do
		// not change how the rest is read.
		{"BOM not at the start", "x" + string(bomLE) + k1, []string{at(1, k1)}},
		{"UTF-8 BOM", "\xef\xbb\xbf" + k1, []string{at(1, k1)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			for _, block := range []int{0, scan.MinBlockSize, scan.MinBlockSize + 1} {
				for _, chunk := range []int{1, 2, 3, 7, 64, 1 << 20} {
					sc := scan.Scanner{BlockSize: block}
					got := findings(t, &sc, chunkReader{strings.NewReader(c.in), chunk})
					is.Equal(got, c.want) // every block size and read size
				}
			}
		})
	}
}

func ExampleScanner_Reader_utf16() {
	// A .env file written by Windows PowerShell 5: UTF-16LE with a byte
	// order mark. (The key is split so that scanning this file finds nothing.)
	key := "2b2d5fcd1a8e2f1f4ee8c0e1c4d5a4d2" + "3c86f03a58e3b4e6d0a5d6aa7b4b92dd"
	text := encodeUTF16("# settings\r\nLICENSE_KEY="+key+"\r\n", binary.LittleEndian, bomLE)
	var sc scan.Scanner
	sc.Reader(strings.NewReader(text), func(line int, masked string) {
		fmt.Printf("line %d: %s\n", line, masked)
	})
	// Output:
	// line 2: 2b2d5fcd...7b4b92dd
}

// oddReader returns at most n bytes per Read, as a pipe or a socket may.
type oddReader struct {
	r io.Reader
	n int
}

func (c oddReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// TestUTF16LargeBlockOddReads: UTF-16 read with a BlockSize above the
// default and odd-sized reads keeps the byte of a code unit split between
// reads (a reallocated buffer dropped it), so the key is found.
func TestUTF16LargeBlockOddReads(t *testing.T) {
	is := is.New(t)
	key := newKey(t)
	in := encodeUTF16("KEY="+key+"\r\n", binary.LittleEndian, bomLE)
	cases := []struct {
		name      string
		blockSize int
		chunk     int
	}{
		{"default block, 3-byte reads", 0, 3},
		{"4 MiB block, whole reads", 4 << 20, 1 << 30},
		{"4 MiB block, 3-byte reads", 4 << 20, 3},
		{"4 MiB block, 1-byte reads", 4 << 20, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			sc := scan.Scanner{BlockSize: c.blockSize}
			got := findings(t, &sc, oddReader{bytes.NewReader([]byte(in)), c.chunk})
			is.Equal(got, []string{at(1, key)})
		})
	}
	_ = is
}
