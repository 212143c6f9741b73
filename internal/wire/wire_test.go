package wire_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

func TestSignedString(t *testing.T) {
	tests := []struct {
		name   string
		status int
		kid    string
		date   string
		body   string
		want   string
	}{
		{"answer", 200, "k1", "Fri, 20 Feb 2026 10:30:00 GMT", `{"valid":true}` + "\n",
			"licensing-signature-v1\n200\nk1\nFri, 20 Feb 2026 10:30:00 GMT\n{\"valid\":true}\n"},
		{"empty body", 401, "kid", "d", "", "licensing-signature-v1\n401\nkid\nd\n"},
		{"all empty", 0, "", "", "", "licensing-signature-v1\n0\n\n\n"},
		{"negative status", -1, "k", "d", "b", "licensing-signature-v1\n-1\nk\nd\nb"},
		{"newlines in the body are kept", 429, "k", "d", "a\nb\n\n", "licensing-signature-v1\n429\nk\nd\na\nb\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(string(wire.SignedString(tc.status, tc.kid, tc.date, []byte(tc.body))), tc.want)
		})
	}
}

func TestSignedStringSeparatesFields(t *testing.T) {
	is := is.New(t)
	// the status is written in decimal, so 20 and 200 differ before the kid starts
	a := wire.SignedString(20, "0k", "d", nil)
	b := wire.SignedString(200, "k", "d", nil)
	is.True(string(a) != string(b)) // no two (status, kid) pairs share a string
}

func TestSignatureRoundTrip(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	for _, kid := range []string{"k1", "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", `a"b`, `a\b`, `\"`, "with space", "tab\there", "a,b", `kid="x"`} {
		t.Run(kid, func(t *testing.T) {
			is := is.New(t)
			body := []byte(`{"nonce":"n"}` + "\n")
			sig := ed25519.Sign(priv, wire.SignedString(200, kid, "Fri, 20 Feb 2026 10:30:00 GMT", body))
			h := wire.FormatSignature(kid, sig)
			gotKid, gotSig, err := wire.ParseSignature(h)
			is.NoErr(err)
			is.Equal(gotKid, kid) // the kid comes back unchanged
			is.Equal(gotSig, sig)
			is.True(ed25519.Verify(pub, wire.SignedString(200, gotKid, "Fri, 20 Feb 2026 10:30:00 GMT", body), gotSig))
		})
	}
}

// The signed date is Licensing-Date's; Date only from a server that sends
// no Licensing-Date.
func TestSignedDate(t *testing.T) {
	const signed, proxy = "Fri, 20 Feb 2026 10:30:00 GMT", "Fri, 20 Feb 2026 10:30:01 GMT"
	tests := []struct {
		name   string
		header http.Header
		want   string
	}{
		{"both, as the server sends them", http.Header{"Date": {signed}, "Licensing-Date": {signed}}, signed},
		{"Date re-stamped by a proxy", http.Header{"Date": {proxy}, "Licensing-Date": {signed}}, signed},
		{"Date dropped by a proxy", http.Header{"Licensing-Date": {signed}}, signed},
		{"a server before Licensing-Date", http.Header{"Date": {signed}}, signed},
		{"an empty Licensing-Date", http.Header{"Date": {signed}, "Licensing-Date": {""}}, signed},
		{"neither", http.Header{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(wire.SignedDate(tc.header), tc.want)
		})
	}
}

// The header the server has always written, byte for byte.
func TestFormatSignatureIsTheServersFormat(t *testing.T) {
	is := is.New(t)
	sig := make([]byte, 64)
	for i := range sig {
		sig[i] = byte(i * 7)
	}
	want := `kid="NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", alg="ed25519", sig="` + base64.StdEncoding.EncodeToString(sig) + `"`
	is.Equal(wire.FormatSignature("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", sig), want)
}

func TestParseSignature(t *testing.T) {
	sig := base64.StdEncoding.EncodeToString(make([]byte, 64))
	ok := []struct {
		name, h string
	}{
		{"server format", `kid="k1", alg="ed25519", sig="` + sig + `"`},
		{"no spaces", `kid="k1",alg="ed25519",sig="` + sig + `"`},
		{"other order", `sig="` + sig + `", kid="k1", alg="ed25519"`},
		{"tabs and surrounding space", " \tkid=\"k1\" ,\talg=\"ed25519\", sig=\"" + sig + "\"\t "},
		{"escaped kid", `kid="k\1", alg="ed25519", sig="` + sig + `"`},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			kid, s, err := wire.ParseSignature(tc.h)
			is.NoErr(err)
			is.Equal(kid, "k1")
			is.Equal(len(s), 64)
		})
	}
	sig63 := base64.StdEncoding.EncodeToString(make([]byte, 63))
	sig65 := base64.StdEncoding.EncodeToString(make([]byte, 65))
	bad := []struct {
		name, h string
	}{
		{"empty", ``},
		{"repeated kid", `kid="k1", kid="k2", alg="ed25519", sig="` + sig + `"`},
		{"repeated alg", `kid="k1", alg="ed25519", alg="ed25519", sig="` + sig + `"`},
		{"repeated sig", `kid="k1", alg="ed25519", sig="` + sig + `", sig="` + sig + `"`},
		{"missing kid", `alg="ed25519", sig="` + sig + `"`},
		{"missing alg", `kid="k1", sig="` + sig + `"`},
		{"missing sig", `kid="k1", alg="ed25519"`},
		{"empty kid", `kid="", alg="ed25519", sig="` + sig + `"`},
		{"other alg", `kid="k1", alg="rsa", sig="` + sig + `"`},
		{"alg in upper case", `kid="k1", alg="ED25519", sig="` + sig + `"`},
		{"unknown parameter", `kid="k1", alg="ed25519", sig="` + sig + `", x="y"`},
		{"parameter name in upper case", `KID="k1", alg="ed25519", sig="` + sig + `"`},
		{"space before =", `kid ="k1", alg="ed25519", sig="` + sig + `"`},
		{"unquoted value", `kid=k1, alg="ed25519", sig="` + sig + `"`},
		{"single quotes", `kid='k1', alg="ed25519", sig="` + sig + `"`},
		{"unterminated quote", `kid="k1, alg="ed25519", sig="` + sig},
		{"trailing backslash", `kid="k1", alg="ed25519", sig="` + sig + `\`},
		{"no comma", `kid="k1" alg="ed25519", sig="` + sig + `"`},
		{"trailing comma", `kid="k1", alg="ed25519", sig="` + sig + `",`},
		{"leading comma", `,kid="k1", alg="ed25519", sig="` + sig + `"`},
		{"double comma", `kid="k1",, alg="ed25519", sig="` + sig + `"`},
		{"semicolons", `kid="k1"; alg="ed25519"; sig="` + sig + `"`},
		{"garbage after a value", `kid="k1"x, alg="ed25519", sig="` + sig + `"`},
		{"bad base64", `kid="k1", alg="ed25519", sig="!!` + sig[2:] + `"`},
		{"url base64", `kid="k1", alg="ed25519", sig="` + strings.Repeat("_", 86) + `=="`},
		{"unpadded base64", `kid="k1", alg="ed25519", sig="` + strings.TrimRight(sig, "=") + `"`},
		{"non-canonical padding bits", `kid="k1", alg="ed25519", sig="` + sig[:len(sig)-3] + `B=="`},
		{"newline inside base64", `kid="k1", alg="ed25519", sig="` + sig[:10] + "\n" + sig[10:] + `"`},
		{"63 bytes", `kid="k1", alg="ed25519", sig="` + sig63 + `"`},
		{"65 bytes", `kid="k1", alg="ed25519", sig="` + sig65 + `"`},
		{"control character in kid", "kid=\"k\x001\", alg=\"ed25519\", sig=\"" + sig + "\""},
		{"non-ASCII kid", `kid="ké", alg="ed25519", sig="` + sig + `"`},
		{"too long", `kid="` + strings.Repeat("k", 1000) + `", alg="ed25519", sig="` + sig + `"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			kid, s, err := wire.ParseSignature(tc.h)
			is.Equal(err, wire.ErrSignatureHeader) // refused
			is.Equal(kid, "")
			is.Equal(s, nil)
		})
	}
}

func TestKeyChecksum(t *testing.T) {
	is := is.New(t)
	// vectors computed independently (Python's zlib.crc32 of the 56 characters)
	sum := wire.KeyChecksum([]byte(strings.Repeat("0", 56)))
	is.Equal(string(sum[:]), "cb612bfd")
	body := "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	sum = wire.KeyChecksum([]byte(body))
	is.Equal(string(sum[:]), "1c637e5a")
	is.True(wire.KeyChecksumOK(body + "1c637e5a"))
}

func TestKeyChecksumOK(t *testing.T) {
	key, err := wire.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  string
		want bool
	}{
		{"generated", key, true},
		{"upper case", strings.ToUpper(key), false},
		{"surrounding space", " " + key, false},
		{"63 characters", key[:63], false},
		{"65 characters", key + "0", false},
		{"empty", "", false},
		{"not hex", "g" + key[1:], false},
		{"checksum of another body", "1" + key[1:56] + key[56:], key[0] == '1'},
		{"checksum upper case", key[:56] + strings.ToUpper(key[56:]), strings.ToUpper(key[56:]) == key[56:]},
		{"multibyte", "é" + key[2:], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(wire.KeyChecksumOK(tc.key), tc.want)
		})
	}
}

// Every single-character change of a key is caught, and the server's
// ParseKey agrees with KeyChecksumOK on every one of them.
func TestKeyChecksumCatchesEveryTypo(t *testing.T) {
	is := is.New(t)
	for range 20 {
		key, err := wire.GenerateKey(nil)
		is.NoErr(err)
		is.True(wire.KeyChecksumOK(key))
		for i := 0; i < len(key); i++ {
			for _, c := range "0123456789abcdef" {
				if byte(c) == key[i] {
					continue
				}
				typo := key[:i] + string(c) + key[i+1:]
				is.True(!wire.KeyChecksumOK(typo)) // a typo never passes
				_, perr := licensing.ParseKey(typo)
				is.True(perr != nil) // nor does it for the server
			}
		}
	}
}

func TestTimeJSON(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	at := time.Date(2026, 2, 20, 11, 30, 0, 0, paris)
	tests := []struct {
		name string
		in   wire.Time
		want string
	}{
		{"zero is null", wire.Time{}, `null`},
		{"written in UTC", wire.Time(at), `"2026-02-20T10:30:00+00:00"`},
		{"fractions dropped", wire.Time(at.Add(999 * time.Millisecond)), `"2026-02-20T10:30:00+00:00"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			b, err := json.Marshal(tc.in)
			is.NoErr(err)
			is.Equal(string(b), tc.want)
		})
	}
	t.Run("optional", func(t *testing.T) {
		is := is.New(t)
		type s struct {
			A *wire.Time `json:"a,omitempty"`
			B *wire.Time `json:"b,omitempty"`
		}
		b, err := json.Marshal(s{A: wire.TimeOf(at), B: wire.TimeOf(time.Time{})})
		is.NoErr(err)
		is.Equal(string(b), `{"a":"2026-02-20T10:30:00+00:00"}`) // zero left out
	})
}

func TestTimeUnmarshal(t *testing.T) {
	want := time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)
	ok := []struct {
		name, in string
		want     time.Time
	}{
		{"TimeLayout", `"2026-02-20T10:30:00+00:00"`, want},
		{"Z", `"2026-02-20T10:30:00Z"`, want},
		{"other offset", `"2026-02-20T12:30:00+02:00"`, want},
		{"fraction", `"2026-02-20T10:30:00.5Z"`, want.Add(500 * time.Millisecond)},
		{"escaped", `"2026-02-20T10:30:00\u002b00:00"`, want},
		{"null", `null`, time.Time{}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			wt := wire.Time(time.Now())
			is.NoErr(json.Unmarshal([]byte(tc.in), &wt))
			is.True(time.Time(wt).Equal(tc.want))
		})
	}
	for _, in := range []string{`""`, `"yesterday"`, `"2026-02-20"`, `"2026-02-20 10:30:00"`, `1771583400`, `true`, `{}`, `"2026-02-20T10:30:00"`} {
		t.Run(in, func(t *testing.T) {
			is := is.New(t)
			var wt wire.Time
			is.True(json.Unmarshal([]byte(in), &wt) != nil) // refused
		})
	}
	t.Run("round trip", func(t *testing.T) {
		is := is.New(t)
		b, err := json.Marshal(wire.Time(want))
		is.NoErr(err)
		var back wire.Time
		is.NoErr(json.Unmarshal(b, &back))
		is.True(time.Time(back).Equal(want))
	})
}

// The JSON of every wire type, field for field and in order.
func TestWireTypesJSON(t *testing.T) {
	days := 3
	f := false
	end := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"claims", wire.TokenClaims{Issuer: "i", Subject: "o", Plan: "p", Features: map[string]any{"a": true}, OrganizationName: "n", IssuedAt: 1, ExpiresAt: 2, ID: "k"},
			`{"iss":"i","sub":"o","plan":"p","features":{"a":true},"orgName":"n","iat":1,"exp":2,"jti":"k"}`},
		{"jwt header", wire.JWTHeader{Alg: wire.AlgEdDSA, Typ: "JWT", Kid: "k"}, `{"alg":"EdDSA","typ":"JWT","kid":"k"}`},
		{"request, minimal", wire.ValidateRequest{LicenseKey: "k"}, `{"licenseKey":"k"}`},
		{"request, full", wire.ValidateRequest{LicenseKey: "k", InstanceName: "n", InstanceURL: "u", InstanceID: "i", Metrics: map[string]float64{"m": 1.5}, Nonce: "x"},
			`{"licenseKey":"k","instanceName":"n","instanceUrl":"u","instanceId":"i","metrics":{"m":1.5},"nonce":"x"}`},
		{"answer, minimal", wire.ValidateAnswer{Valid: true, Plan: "p"},
			`{"valid":true,"plan":"p","features":null,"organizationId":"","organizationName":"","violations":null}`},
		{"answer, full", wire.ValidateAnswer{Valid: true, Plan: "p", Features: map[string]any{}, OrganizationID: "o", OrganizationName: "n", Violations: []string{"v"},
			CurrentPeriodEnd: wire.TimeOf(end), TrialEndsAt: wire.TimeOf(end), TrialDaysLeft: &days, BillingURL: "b", Nonce: "x"},
			`{"valid":true,"plan":"p","features":{},"organizationId":"o","organizationName":"n","violations":["v"],"currentPeriodEnd":"2026-03-01T00:00:00+00:00","trialEndsAt":"2026-03-01T00:00:00+00:00","trialDaysLeft":3,"billingUrl":"b","nonce":"x"}`},
		{"error, minimal", wire.ErrorAnswer{Error: "e"}, `{"error":"e"}`},
		{"error, refusal", wire.ErrorAnswer{Valid: &f, Error: "e", Plan: "p", BillingURL: "b", Nonce: "x"},
			`{"valid":false,"error":"e","plan":"p","billingUrl":"b","nonce":"x"}`},
		{"revocations", wire.RevocationList{OrganizationID: "o", Revoked: []string{"a", "b"}, Nonce: "x"}, `{"organizationId":"o","revoked":["a","b"],"nonce":"x"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			b, err := json.Marshal(tc.v)
			is.NoErr(err)
			is.Equal(string(b), tc.want)
		})
	}
}

func TestPaths(t *testing.T) {
	is := is.New(t)
	is.Equal(wire.APIPrefix+wire.PathValidate, "/api/v1/licensing/validate")
	is.Equal(wire.APIPrefix+wire.PathRevocations, "/api/v1/licensing/revocations")
	is.Equal(wire.APIPrefix+wire.PathPublicKeys, "/api/v1/licensing/public-keys")
	is.Equal(wire.PathKeyToken, wire.PathKey+"/jwt")
}
