package licensing_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

func TestPepperFingerprint(t *testing.T) {
	is := is.New(t)
	p := bytes.Repeat([]byte{7}, 32)
	fp := licensing.PepperFingerprint(p)
	is.Equal(len(fp), 64)                                                // hex SHA-256
	is.Equal(fp, licensing.PepperFingerprint(append([]byte(nil), p...))) // stable
	q := bytes.Repeat([]byte{7}, 32)
	q[31] = 8
	is.True(fp != licensing.PepperFingerprint(q)) // one byte changes it
	h, err := licensing.NewHMACHasher(p)
	is.NoErr(err)
	is.True(fp != h.LookupValue(""))                   // not the lookup value of any key
	is.True(!strings.Contains(fp, "0707070707070707")) // the pepper does not show
}
