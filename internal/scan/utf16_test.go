package scan_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/licensekit/licensing/internal/scan"
	"github.com/matryer/is"
)

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
