package wire_test

import (
	"fmt"
	"net/http"

	"github.com/licensekit/licensing/internal/wire"
)

func ExampleSignedString() {
	s := wire.SignedString(200, "k1", "Fri, 20 Feb 2026 10:30:00 GMT", []byte(`{"valid":true}`))
	fmt.Printf("%q\n", s)
	// Output: "licensing-signature-v1\n200\nk1\nFri, 20 Feb 2026 10:30:00 GMT\n{\"valid\":true}"
}

func ExampleKeyChecksumOK() {
	body := "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	sum := wire.KeyChecksum([]byte(body))
	fmt.Println(string(sum[:]), wire.KeyChecksumOK(body+string(sum[:])), wire.KeyChecksumOK(body+"00000000"))
	// Output: 1c637e5a true false
}

func ExampleParseSignature() {
	h := wire.FormatSignature("k1", make([]byte, 64))
	kid, sig, err := wire.ParseSignature(h)
	fmt.Println(kid, len(sig), err)
	_, _, err = wire.ParseSignature(`kid="k1", kid="k2", alg="ed25519", sig="AA=="`)
	fmt.Println(err)
	// Output:
	// k1 64 <nil>
	// wire: malformed Licensing-Signature header
}

func ExampleSignedDate() {
	h := http.Header{}
	h.Set("Date", "Fri, 20 Feb 2026 10:30:01 GMT")                // a proxy's own clock
	h.Set(wire.SignedDateHeader, "Fri, 20 Feb 2026 10:30:00 GMT") // the server's, signed
	fmt.Println(wire.SignedDate(h))
	h.Del(wire.SignedDateHeader) // a server from before Licensing-Date
	fmt.Println(wire.SignedDate(h))
	// Output:
	// Fri, 20 Feb 2026 10:30:00 GMT
	// Fri, 20 Feb 2026 10:30:01 GMT
}

func ExampleCheckInstanceURL() {
	for _, u := range []string{"http://storno-app:8000", "app.example.com:8443/storno", "storno-app:8000", "javascript:alert(1)"} {
		fmt.Println(u, wire.CheckInstanceURL(u))
	}
	// Output:
	// http://storno-app:8000 <nil>
	// app.example.com:8443/storno <nil>
	// storno-app:8000 wire: invalid value
	// javascript:alert(1) wire: invalid value
}
