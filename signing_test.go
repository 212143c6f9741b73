package licensing_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

var testSigning = func() *licensing.SigningKeys {
	k, err := licensing.GenerateSigningKeys(2048)
	if err != nil {
		panic(err)
	}
	return k
}()

type jwk struct {
	Kty, Crv, X, N, E, Kid, Alg, Use string
}

func jwks(t *testing.T, e *env) map[string]jwk {
	t.Helper()
	r := e.do(t, "GET", "/api/v1/licensing/public-keys", "", "")
	if r.status != 200 {
		t.Fatalf("public-keys: %d", r.status)
	}
	var doc struct{ Keys []jwk }
	json.Unmarshal([]byte(r.raw), &doc)
	out := map[string]jwk{}
	for _, k := range doc.Keys {
		out[k.Kid] = k
	}
	return out
}

func b64(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyJWT checks a token's signature with the JWKS and returns header and claims.
func verifyJWT(t *testing.T, keys map[string]jwk, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	var header, claims map[string]any
	json.Unmarshal(b64(t, parts[0]), &header)
	json.Unmarshal(b64(t, parts[1]), &claims)
	k, ok := keys[header["kid"].(string)]
	if !ok {
		t.Fatal("kid not in JWKS")
	}
	input, sig := []byte(parts[0]+"."+parts[1]), b64(t, parts[2])
	switch header["alg"] {
	case "EdDSA":
		if !ed25519.Verify(b64(t, k.X), input, sig) {
			t.Fatal("EdDSA signature does not verify")
		}
	case "RS256":
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(b64(t, k.N)), E: int(new(big.Int).SetBytes(b64(t, k.E)).Int64())}
		sum := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			t.Fatal("RS256 signature does not verify:", err)
		}
	default:
		t.Fatalf("alg %v", header["alg"])
	}
	return header, claims
}

func TestPublicKeys(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.Signing = testSigning })
	keys := jwks(t, e)
	is.Equal(len(keys), 2)
	for kid, k := range keys {
		is.True(kid != "")
		is.Equal(k.Use, "sig")
		switch k.Kty {
		case "OKP":
			is.Equal(k.Alg, "EdDSA")
			is.Equal(k.Crv, "Ed25519")
		case "RSA":
			is.Equal(k.Alg, "RS256")
			is.True(len(b64(t, k.N)) >= 256) // 2048 bits or more
		default:
			t.Fatalf("kty %s", k.Kty)
		}
	}
}

func TestOfflineToken(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.Signing = testSigning; c.Policy.Issuer = "licensing.example.com" })
	id, _ := e.create(t, "t-owner", "prod")
	keys := jwks(t, e)
	for _, alg := range []string{"", "RS256", "EdDSA"} {
		r := e.do(t, "POST", keysPath+"/"+id+"/jwt?alg="+alg, "t-owner", "")
		is.Equal(r.status, 200)
		is.Equal(keysOf(r.body), []string{"expiresAt", "jwt", "plan"})
		is.Equal(r.body["expiresAt"], "2027-02-20T10:30:00+00:00") // one year by default
		is.Equal(r.body["plan"], "business")
		header, claims := verifyJWT(t, keys, r.body["jwt"].(string))
		want := alg
		if want == "" {
			want = "RS256" // compatible default when an RSA key is configured
		}
		is.Equal(header["alg"], want)
		is.Equal(header["typ"], "JWT")
		is.Equal(keysOf(claims), []string{"exp", "features", "iat", "iss", "jti", "orgName", "plan", "sub"}) // exactly these claims
		is.Equal(claims["iss"], "licensing.example.com")
		is.Equal(claims["sub"], "org-1")
		is.Equal(claims["jti"], id)
		is.Equal(claims["orgName"], "SC Firma Mea SRL")
		is.Equal(claims["iat"], float64(e.clock.Now().Unix()))
		is.Equal(claims["features"].(map[string]any)["selfHostingLicense"], true)
	}
	// errors
	is.Equal(e.do(t, "POST", keysPath+"/"+id+"/jwt?alg=HS256", "t-owner", "").status, 400)
	is.Equal(e.do(t, "POST", keysPath+"/019c8a12-4567-7abc-8ef0-123456789abc/jwt", "t-owner", "").status, 404)
	is.Equal(e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-member", "").status, 403)
	is.Equal(e.do(t, "POST", keysPath+"/"+id+"/jwt", "", "").status, 401)
	is.Equal(e.do(t, "GET", keysPath+"/"+id+"/jwt", "t-owner", "").status, 405)
	e.orgs.update("org-1", func(o *licensing.Organization) { o.Active = false })
	is.Equal(e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "").status, 403) // inactive organization
	e.orgs.update("org-1", func(o *licensing.Organization) { o.Active = true; o.Features = map[string]any{} })
	is.Equal(e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "").status, 403) // plan not eligible
	e.orgs.update("org-1", func(o *licensing.Organization) { o.Features = map[string]any{"selfHostingLicense": true} })
	is.Equal(e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "").status, 200)
	r := e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "")
	is.Equal(r.status, 403) // revoked key
	is.Equal(r.body["error"], "License key is revoked")
}

func TestOfflineTokenWithoutRSAAndCappedAtPeriodEnd(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.CapTokensAtPeriodEnd, c.TokenPeriodGrace = true, 7*24*time.Hour })
	id, _ := e.create(t, "t-owner", "prod")
	r := e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "")
	is.Equal(r.status, 200)
	header, _ := verifyJWT(t, jwks(t, e), r.body["jwt"].(string))
	is.Equal(header["alg"], "EdDSA")                           // the default without an RSA key
	is.Equal(r.body["expiresAt"], "2026-03-27T00:00:00+00:00") // period end (March 20) + 7 days grace
	is.Equal(e.do(t, "POST", keysPath+"/"+id+"/jwt?alg=RS256", "t-owner", "").status, 400)
	e.clock.Add(60 * 24 * time.Hour)
	is.Equal(e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "").status, 403) // period and grace over
}

var sigHeader = regexp.MustCompile(`^kid="([^"]+)", alg="ed25519", sig="([^"]+)"$`)

// verifyAnswer checks the Licensing-Signature of a response.
func verifyAnswer(t *testing.T, keys map[string]jwk, r response) bool {
	t.Helper()
	m := sigHeader.FindStringSubmatch(r.header.Get(licensing.SignatureHeader))
	if m == nil {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(m[2])
	if err != nil {
		return false
	}
	k := keys[m[1]]
	// the signed string as docs/API.md gives it, written out here rather than
	// taken from the code under test
	signed := fmt.Sprintf("licensing-signature-v1\n%d\n%s\n%s\n%s", r.status, m[1], r.header.Get("Date"), r.raw)
	return ed25519.Verify(b64(t, k.X), []byte(signed), sig)
}

func TestSignedValidationAnswers(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, func(c *licensing.Config) { c.Signing = testSigning }, func(c *licensing.HandlerConfig) {
		c.RateLimit, c.RateBurst = 60, 4
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	keys := jwks(t, e)
	id, key := e.create(t, "t-owner", "prod")

	r := e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.header.Get(licensing.SignatureHeader), "") // existing clients: plain answer
	_, has := r.body["nonce"]
	is.True(!has)

	r = e.do(t, "POST", validatePath, "", validateBody(key, `"nonce":"n-123"`))
	is.Equal(r.status, 200)
	is.Equal(r.body["nonce"], "n-123") // echoed
	is.True(verifyAnswer(t, keys, r))  // and signed
	is.Equal(r.header.Get("Date"), "Fri, 20 Feb 2026 10:30:00 GMT")
	tampered := r
	tampered.raw = strings.Replace(r.raw, "business", "enterprise", 1)
	is.True(!verifyAnswer(t, keys, tampered)) // a changed body fails
	tampered = r
	tampered.status = 401
	is.True(!verifyAnswer(t, keys, tampered)) // so does a changed status

	is.Equal(e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "").status, 200)
	r = e.do(t, "POST", validatePath, "", validateBody(key, `"nonce":"n-456"`))
	is.Equal(r.status, 401)
	is.Equal(r.raw, `{"valid":false,"error":"Invalid or revoked license key","nonce":"n-456"}`+"\n")
	is.True(verifyAnswer(t, keys, r)) // a revocation can be trusted

	r = e.do(t, "POST", validatePath, "", validateBody(key, `"nonce":"`+strings.Repeat("x", 129)+`"`))
	is.Equal(r.status, 400) // nonce bounded

	for i := 0; i < 5; i++ {
		r = e.do(t, "POST", validatePath, "", validateBody(key, `"nonce":"n-789"`), "X-Forwarded-For", "203.0.113.9")
	}
	is.Equal(r.status, 429)
	is.Equal(r.body["nonce"], "n-789")
	is.True(verifyAnswer(t, keys, r)) // a signed 429
}

func TestRevocationList(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.Signing = testSigning })
	keys := jwks(t, e)
	id1, _ := e.create(t, "t-owner", "a")
	e.create(t, "t-owner", "b")
	id3, _ := e.create(t, "t-owner", "c")
	e.do(t, "DELETE", keysPath+"/"+id3, "t-owner", "")
	e.do(t, "DELETE", keysPath+"/"+id1, "t-owner", "")
	r := e.do(t, "GET", "/api/v1/licensing/revocations?org=org-1&nonce=abc", "", "")
	is.Equal(r.status, 200)
	is.True(verifyAnswer(t, keys, r))
	want := []any{id1, id3}
	if id3 < id1 {
		want = []any{id3, id1}
	}
	is.Equal(r.body["revoked"], want) // sorted ids of revoked keys
	is.Equal(r.body["nonce"], "abc")
	r = e.do(t, "GET", "/api/v1/licensing/revocations?org=org-404", "", "")
	is.Equal(r.status, 200)
	is.Equal(r.body["revoked"], []any{}) // unknown organization: nothing to probe
	is.Equal(e.do(t, "GET", "/api/v1/licensing/revocations", "", "").status, 400)
	_ = http.StatusOK
}

func TestRetiredKeysAndPEM(t *testing.T) {
	is := is.New(t)
	old, err := licensing.GenerateSigningKeys(2048)
	is.NoErr(err)
	var oldPubs []crypto.PublicKey
	for block, rest := pem.Decode(old.PublicKeysPEM()); block != nil; block, rest = pem.Decode(rest) {
		is.Equal(block.Type, "PUBLIC KEY")
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		is.NoErr(err)
		oldPubs = append(oldPubs, pub)
	}
	is.Equal(len(oldPubs), 2)
	_, isRSA := oldPubs[0].(*rsa.PublicKey)
	is.True(isRSA) // RSA first, for tools that read one block
	_, isEd := oldPubs[1].(ed25519.PublicKey)
	is.True(isEd)

	signing, err := testSigning.WithRetired(append(oldPubs, oldPubs[0])...) // a duplicate is published once
	is.NoErr(err)
	is.Equal(len(testSigning.PublicKeysPEM()), len(old.PublicKeysPEM())) // the original is unchanged
	e := newEnv(t, func(c *licensing.Config) { c.Signing = signing })
	keys := jwks(t, e)
	is.Equal(len(keys), 4) // two active, two retired
	is.Equal(signing.KeyID(), testSigning.KeyID())
	res, err := http.Get(e.srv.URL + "/api/v1/licensing/public-keys.pem")
	is.NoErr(err)
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	is.Equal(res.StatusCode, 200)
	is.Equal(res.Header.Get("Content-Type"), "application/x-pem-file")
	is.Equal(res.Header.Get("X-Content-Type-Options"), "nosniff")
	is.Equal(string(raw), string(signing.PublicKeysPEM()))
	is.True(strings.HasSuffix(string(raw), string(old.PublicKeysPEM()))) // retired last, in order
	is.Equal(strings.Count(string(raw), "-----BEGIN PUBLIC KEY-----"), 4)
	r := e.do(t, "POST", "/api/v1/licensing/public-keys.pem", "", "")
	is.Equal(r.status, 405)

	for _, bad := range []crypto.PublicKey{nil, "key", ed25519.PublicKey{1, 2}, &rsa.PublicKey{N: big.NewInt(77), E: 3}} {
		_, err := testSigning.WithRetired(bad)
		is.True(err != nil) // only Ed25519 and RSA keys of 2048 bits or more
	}
}
