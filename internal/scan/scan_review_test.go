package scan_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/licensekit/licensing/internal/scan"
	"github.com/matryer/is"
)

// utf16LE encodes s as Windows PowerShell 5 writes `echo $key > file`:
// UTF-16LE with a byte order mark.
func utf16LE(s string) string {
	var b bytes.Buffer
	b.Write([]byte{0xff, 0xfe})
	for _, u := range utf16.Encode([]rune(s)) {
		binary.Write(&b, binary.LittleEndian, u)
	}
	return b.String()
}

// Review (review5): the scanner promises to find "strings that are
// well-formed keys with a valid checksum" in common files (issue 13, item 6).
// Each case below is a key in a file type that real repositories and CI logs
// hold; each is missed.
func TestReviewScanFalseNegatives(t *testing.T) {
	key := newKey(t)
	cases := []struct {
		name string
		in   string
	}{
		// Go's encoding/json escapes <, > and & by default: a key inside
		// HTML held in a JSON document ("<code>KEY</code>") becomes
		// \u003ecode\u003e + KEY: the 4 hex digits of the escape join the
		// key's hex run (68 characters, preceded by 'u').
		{"json with Go HTML escaping", `{"body":"\u003ccode\u003e` + key + `\u003c/code\u003e"}` + "\n"},
		// A CI or terminal log with colours: ESC [ 3 2 m KEY ESC [ 0 m. The
		// 'm' that ends the SGR sequence is alphanumeric, so the key is
		// taken to be inside an identifier.
		{"ANSI-coloured log line", "created key: \x1b[1;32m" + key + "\x1b[0m\n"},
		// Minified JavaScript with a \x3d (=) escape before the key.
		{"minified JS hex escape", `var q="key\x3d` + key + `";`},
		// A mail saved as .eml, quoted-printable: "=" is written "=3D", as
		// a URL writes "%3D" (which the scanner does handle).
		{"quoted-printable mail", "Content-Transfer-Encoding: quoted-printable\n\nLICENSE_KEY=3D" + key + "\n"},
		// A .env written by Windows PowerShell 5 (`echo ... > .env`).
		{"UTF-16LE .env", utf16LE("LICENSE_KEY=" + key + "\r\n")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			var sc scan.Scanner
			got := findings(t, &sc, strings.NewReader(c.in))
			is.Equal(got, []string{at(1, key)}) // the planted key is found
		})
	}
}
