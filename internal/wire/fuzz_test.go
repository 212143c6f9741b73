package wire_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/licensekit/licensing/internal/wire"
)

// FuzzParseSignature: ParseSignature never panics, accepts only complete
// headers, and what it accepts formats back to a header that parses to the
// same kid and signature.
func FuzzParseSignature(f *testing.F) {
	sig := base64.StdEncoding.EncodeToString(make([]byte, 64))
	f.Add(`kid="k1", alg="ed25519", sig="` + sig + `"`)
	f.Add(`sig="` + sig + `",alg="ed25519",kid="a\"b"`)
	f.Add(`kid="k1", kid="k1", alg="ed25519", sig="` + sig + `"`)
	f.Add(`kid="k1",alg="ed25519"`)
	f.Add(`sig="=="`)
	f.Add(`kid=k1`)
	f.Add(`kid="\`)
	f.Fuzz(func(t *testing.T, h string) {
		kid, sig, err := wire.ParseSignature(h)
		if err != nil {
			if kid != "" || sig != nil {
				t.Fatalf("refused %q but returned values", h)
			}
			return
		}
		if kid == "" || len(sig) != 64 {
			t.Fatalf("accepted an incomplete header %q", h)
		}
		kid2, sig2, err := wire.ParseSignature(wire.FormatSignature(kid, sig))
		if err != nil || kid2 != kid || !bytes.Equal(sig2, sig) {
			t.Fatalf("round trip of %q: %q %x %v", h, kid2, sig2, err)
		}
	})
}
