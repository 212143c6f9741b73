package scan_test

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/scan"
	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// reference is the slow, obvious reading of the package's definition: every
// offset is tried, and the 64 bytes there are a key when they are all hex and
// licensing.ParseKey accepts them.
//
// Input that starts with a UTF-16 byte order mark is read twice: decoded
// (each code unit below 0x80 becomes that byte, any other the byte 0x80),
// and as it is; the keys of both, sorted.
func reference(data []byte) []string {
	if hasBOM(data) {
		var text []byte
		for j := 2; j+1 < len(data); j += 2 {
			u := uint16(data[j]) | uint16(data[j+1])<<8
			if data[0] == 0xfe {
				u = uint16(data[j])<<8 | uint16(data[j+1])
			}
			text = append(text, byte(min(u, 0x80)))
		}
		out := append(keysIn(text), keysIn(data)...)
		slices.Sort(out)
		return out
	}
	return keysIn(data)
}

func hasBOM(data []byte) bool {
	return len(data) >= 2 && (data[0] == 0xff && data[1] == 0xfe || data[0] == 0xfe && data[1] == 0xff)
}

// keysIn is the reference for bytes read as they are.
func keysIn(data []byte) []string {
	hex := func(c byte) bool {
		return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
	}
	var out []string
	for k := 0; k+wire.KeyLength <= len(data); k++ {
		window := data[k : k+wire.KeyLength]
		if bytes.IndexFunc(window, func(r rune) bool { return r > 0x7f || !hex(byte(r)) }) >= 0 {
			continue // ParseKey trims white space
		}
		key, err := licensing.ParseKey(string(window))
		if err != nil {
			continue
		}
		out = append(out, fmt.Sprintf("%d: %s", 1+bytes.Count(data[:k], []byte("\n")), wire.MaskKey(key)))
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
		key, _ := wire.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seq}, 28)))
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
		"\xff\xfeLICENSE_KEY=#\r\n", "\xfe\xff\x00#", "\xff\xfe\xe9#\x00",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint16(i*37), uint8(i*11))
	}
	f.Fuzz(func(t *testing.T, data []byte, block uint16, chunk uint8) {
		is := is.New(t)
		in := plant(data)
		if bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
			// UTF-16LE: the planted keys are written in it too.
			in = []byte{0xff, 0xfe}
			for _, c := range plant(data[2:]) {
				in = append(in, c, 0)
			}
		}
		sc := scan.Scanner{BlockSize: scan.MinBlockSize + int(block)%1024}
		var got []string
		err := sc.Reader(chunkReader{bytes.NewReader(in), 1 + int(chunk)}, func(line int, masked string) {
			got = append(got, fmt.Sprintf("%d: %s", line, masked))
		})
		is.NoErr(err)
		if hasBOM(in) {
			slices.Sort(got) // two readings, each in order
		}
		is.Equal(got, reference(in)) // the scanner agrees with the reference
	})
}
