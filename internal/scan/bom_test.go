package scan_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/licensekit/licensing/internal/scan"
	"github.com/matryer/is"
)

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
