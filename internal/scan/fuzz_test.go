package scan_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/scan"
	"github.com/matryer/is"
)

// reference is the slow, obvious reading of the package's definition: every
// offset is tried, the candidate is checked with licensing.ParseKey, and the
// boundaries are checked byte by byte.
func reference(data []byte) []string {
	alnum := func(c byte) bool {
		return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
	}
	hex := func(c byte) bool {
		return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
	}
	var out []string
	for k := 0; k+licensing.KeyLength <= len(data); k++ {
		key, err := licensing.ParseKey(string(data[k : k+licensing.KeyLength]))
		if err != nil || !hex(data[k]) || !hex(data[k+licensing.KeyLength-1]) { // ParseKey trims white space
			continue
		}
		if end := k + licensing.KeyLength; end < len(data) && alnum(data[end]) {
			continue
		}
		left := k == 0 || !alnum(data[k-1]) ||
			k >= 2 && data[k-2] == '\\' && strings.IndexByte("nrt", data[k-1]) >= 0 ||
			k >= 3 && data[k-3] == '%' && hex(data[k-2]) && hex(data[k-1])
		if !left {
			continue
		}
		out = append(out, fmt.Sprintf("%d: %s", 1+bytes.Count(data[:k], []byte("\n")), licensing.MaskKey(key)))
	}
	return out
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// plant replaces each '#' in data with a valid key (upper case after '^'),
// so that the fuzzer works with real keys in whatever surrounds them.
func plant(data []byte) []byte {
	var out []byte
	seq := byte(0)
	for i, c := range data {
		if c != '#' {
			out = append(out, c)
			continue
		}
		seq++
		key, _ := licensing.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seq}, 28)))
		if i > 0 && data[i-1] == '^' {
			key = strings.ToUpper(key)
		}
		out = append(out, key...)
	}
	return out
}

// FuzzScan checks that the Scanner finds what the reference finds, whatever
// the block size and however the reader splits its input.
func FuzzScan(f *testing.F) {
	seeds := []string{
		"#", "x#", "#x", "# #", "##", "\\n#", "%3D#", "%3#", "a\r\n^#\r\n", `{"k":"#"}`,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 #",
		strings.Repeat("ab", 70) + "#", strings.Repeat("z\n", 70) + "#\n#",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint16(i*37), uint8(i*11))
	}
	f.Fuzz(func(t *testing.T, data []byte, block uint16, chunk uint8) {
		is := is.New(t)
		in := plant(data)
		sc := scan.Scanner{BlockSize: scan.MinBlockSize + int(block)%1024}
		var got []string
		err := sc.Reader(chunkReader{bytes.NewReader(in), 1 + int(chunk)}, func(line int, masked string) {
			got = append(got, fmt.Sprintf("%d: %s", line, masked))
		})
		is.NoErr(err)
		is.Equal(got, reference(in)) // the scanner agrees with the reference
	})
}
