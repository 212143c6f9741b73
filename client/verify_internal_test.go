package client

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// The keys the key-set fuzzer signs with: an Ed25519 key (all-zero seed,
// as fuzzKeys) and one RSA-2048 key, made once.
var (
	ksEd       = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	ksRSA      *rsa.PrivateKey
	ksRSAOnce  sync.Once
	b64        = base64.RawURLEncoding.EncodeToString
	identityX  = b64(append([]byte{1}, make([]byte, 31)...)) // the identity point
	forgedSig  = append([]byte{1}, make([]byte, 63)...)      // R = identity, S = 0
	order8X, _ = hex.DecodeString(smallOrderPoints[2])
)

func rsaKey() *rsa.PrivateKey {
	ksRSAOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ksRSA = k
	})
	return ksRSA
}

func edJWK(kid string, x []byte) map[string]string {
	return map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64(x), "kid": kid, "alg": "EdDSA", "use": "sig"}
}

func rsaJWK(kid string, n []byte, e int) map[string]string {
	return map[string]string{"kty": "RSA", "n": b64(n), "e": b64(big.NewInt(int64(e)).Bytes()), "kid": kid, "alg": "RS256", "use": "sig"}
}

func jwksDoc(keys ...map[string]string) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

// signedToken is a compact JWS of a fixed payload, signed by the fuzzer's
// key for alg, under kid.
func signedToken(alg, kid string) string {
	h, _ := json.Marshal(wire.JWTHeader{Alg: alg, Typ: "JWT", Kid: kid})
	input := b64(h) + "." + b64([]byte(`{"iss":"i","sub":"o","plan":"p","exp":1}`))
	var sig []byte
	if alg == wire.AlgEdDSA {
		sig = ed25519.Sign(ksEd, []byte(input))
	} else {
		sum := sha256.Sum256([]byte(input))
		sig, _ = rsa.SignPKCS1v15(nil, rsaKey(), crypto.SHA256, sum[:])
	}
	return input + "." + b64(sig)
}

// keySetSeeds are key sets a client may be given: the server's (Ed25519 and
// RSA), then the hard cases.
func keySetSeeds() [][]byte {
	pub := ksEd.Public().(ed25519.PublicKey)
	n := rsaKey().N.Bytes()
	odd2040 := new(big.Int).Rsh(rsaKey().N, 8) // 2040 bits: in 256 bytes with a leading zero
	odd2040.SetBit(odd2040, 0, 1)
	padded := append([]byte{0}, odd2040.Bytes()...)
	huge := new(big.Int).Lsh(big.NewInt(1), maxRSABits+8)
	huge.SetBit(huge, 0, 1)
	return [][]byte{
		jwksDoc(edJWK("k1", pub), rsaJWK("r1", n, 65537)),
		jwksDoc(edJWK("k1", pub)),
		jwksDoc(rsaJWK("r1", n, 65537)),
		[]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + identityX + `","kid":"k1"}]}`),
		jwksDoc(edJWK("k1", order8X)),
		jwksDoc(edJWK("k1", pub), edJWK("k1", pub)),                 // one kid, twice
		jwksDoc(edJWK("k1", pub), rsaJWK("k1", n, 65537)),           // one kid, two types
		jwksDoc(rsaJWK("r1", padded, 65537)),                        // 256 bytes, 2040 bits
		jwksDoc(rsaJWK("r1", huge.Bytes(), 65537)),                  // too long to verify cheaply
		jwksDoc(rsaJWK("r1", n, 1), rsaJWK("r2", n, 65536)),         // exponents 1 and even
		jwksDoc(rsaJWK("r1", append(n[:255:255], n[255]-1), 65537)), // even modulus
		[]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64(pub) + `","kid":"k1","alg":"RS256"}]}`),
		[]byte(`{"keys":[{"kty":"RSA","n":"` + b64(n) + `","e":"AQAB","kid":"r1","alg":"EdDSA"}]}`),
		[]byte(`{"keys":[{"kty":"RSA","n":"` + b64(n) + `","e":"AAEAAQ","kid":"r1"}]}`),
		[]byte(`{"keys":[{"kty":"RSA","n":"` + b64(n) + `","e":"_____w","kid":"r1"}]}`),
		[]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"e1"}]}`),
		[]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64(pub) + `","kid":"k1","use":"enc"}]}`),
		[]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64(pub) + `"}]}`),
		jwksDoc(edJWK("\x8bk1", pub)), // a kid the answer header cannot carry (found by the fuzzer)
		jwksDoc(edJWK(strings.Repeat("k", maxKIDLength+1), pub)),
		jwksDoc(edJWK(`k"\`, pub)), // quote and backslash: escaped in the header
		[]byte(`{"keys":null}`), []byte(`{"keys":[null,1,"x"]}`), []byte(`[]`), []byte(`null`), []byte(``),
	}
}

// checkKeySet is the property of a key set: parseJWKS never panics; a
// refusal says it is about the public keys; every key it accepts is sound
// (an Ed25519 key not of small order, an RSA key of 2048 to 16384 bits with
// an odd modulus and a usable exponent) and verifies exactly the signatures
// of its own private key, in tokens and in signed answers; and a token it
// accepts carries the signature of the key its kid names.
func checkKeySet(t *testing.T, doc []byte, token string) {
	t.Helper()
	ks, err := parsePublicKeys(doc)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "client: Config.PublicKeys") {
			t.Fatalf("refusal %q does not say what was refused", err)
		}
		return
	}
	if len(ks) == 0 {
		t.Fatal("an empty key set accepted")
	}
	pub := ksEd.Public().(ed25519.PublicKey)
	date, body := "Fri, 20 Feb 2026 10:30:00 GMT", []byte(`{"valid":true}`)
	for kid, k := range ks {
		switch k.alg {
		case wire.AlgEdDSA:
			if len(k.ed) != ed25519.PublicKeySize || k.rsa != nil || smallOrder(k.ed) {
				t.Fatalf("kid %q: unsound Ed25519 key %x", kid, k.ed)
			}
			own := bytes.Equal(k.ed, pub)
			if _, err := parseToken(ks, signedToken(wire.AlgEdDSA, kid)); (err == nil) != own {
				t.Fatalf("kid %q: a token signed by another key accepted=%v (own key %v)", kid, err == nil, own)
			}
			sig := wire.FormatSignature(kid, ed25519.Sign(ksEd, wire.SignedString(200, kid, date, body)))
			if err := ks.verifyAnswer(200, sig, date, body); (err == nil) != own {
				t.Fatalf("kid %q: an answer signed by another key accepted=%v (own key %v)", kid, err == nil, own)
			}
			for _, msg := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"} {
				if ed25519.Verify(k.ed, []byte(msg), forgedSig) {
					t.Fatalf("kid %q: the key verifies the forgery R=identity, S=0 of %q", kid, msg)
				}
			}
		case wire.AlgRS256:
			if k.rsa == nil || k.ed != nil || k.rsa.N.BitLen() < minRSABits || k.rsa.N.BitLen() > maxRSABits ||
				k.rsa.N.Bit(0) == 0 || k.rsa.E < 3 || k.rsa.E%2 == 0 {
				t.Fatalf("kid %q: unsound RSA key (%d bits, e=%d)", kid, k.rsa.N.BitLen(), k.rsa.E)
			}
			own := k.rsa.N.Cmp(rsaKey().N) == 0 && k.rsa.E == rsaKey().E
			if _, err := parseToken(ks, signedToken(wire.AlgRS256, kid)); (err == nil) != own {
				t.Fatalf("kid %q: a token signed by another key accepted=%v (own key %v)", kid, err == nil, own)
			}
			if ks.verifyAnswer(200, wire.FormatSignature(kid, make([]byte, 64)), date, body) == nil {
				t.Fatalf("kid %q: an RSA key verified an answer", kid)
			}
		default:
			t.Fatalf("kid %q: unknown alg %q", kid, k.alg)
		}
	}
	if _, err := parseToken(ks, token); err != nil {
		return
	}
	parts := strings.Split(token, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	var h wire.JWTHeader
	if json.Unmarshal(hb, &h) != nil {
		t.Fatalf("accepted %q with an unreadable header", token)
	}
	k := ks[h.Kid]
	input := []byte(parts[0] + "." + parts[1])
	sum := sha256.Sum256(input)
	switch {
	case h.Alg != k.alg:
		t.Fatalf("accepted %q: alg %q for a %s key", token, h.Alg, k.alg)
	case k.alg == wire.AlgEdDSA && !ed25519.Verify(k.ed, input, sig),
		k.alg == wire.AlgRS256 && rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, sum[:], sig) != nil:
		t.Fatalf("accepted %q without its key's signature", token)
	}
}

// FuzzParseJWKS feeds arbitrary key sets, JWKS or PEM (and tokens), to the client: see
// checkKeySet for the property.
func FuzzParseJWKS(f *testing.F) {
	tokens := []string{signedToken(wire.AlgEdDSA, "k1"), signedToken(wire.AlgRS256, "r1"), "a.b.c", ""}
	for i, doc := range keySetSeeds() {
		f.Add(doc, tokens[i%len(tokens)])
	}
	edDER, _ := x509.MarshalPKIXPublicKey(ksEd.Public())
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	f.Add(append(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER})...), tokens[0])
	f.Fuzz(func(t *testing.T, doc []byte, token string) {
		if len(doc) > 64<<10 {
			return
		}
		checkKeySet(t, doc, token)
	})
}

// TestParseJWKSHardCases: the seeds as table cases, with what parseJWKS
// makes of each, so that a plain go test covers them.
func TestParseJWKSHardCases(t *testing.T) {
	seeds := keySetSeeds()
	tests := []struct {
		name string
		doc  []byte
		kids []string // accepted kids; nil: refused
	}{
		{"server's set", seeds[0], []string{"k1", "r1"}},
		{"Ed25519 only", seeds[1], []string{"k1"}},
		{"RSA only", seeds[2], []string{"r1"}},
		{"identity point: every message forgeable", seeds[3], nil},
		{"point of order 8", seeds[4], nil},
		{"one kid twice", seeds[5], nil},
		{"one kid, two key types", seeds[6], nil},
		{"2040-bit modulus padded to 256 bytes", seeds[7], nil},
		{"modulus beyond 16384 bits", seeds[8], nil},
		{"exponents 1 and even", seeds[9], nil},
		{"even modulus", seeds[10], nil},
		{"Ed25519 key declared RS256", seeds[11], nil},
		{"RSA key declared EdDSA", seeds[12], nil},
		{"exponent with leading zeros", seeds[13], []string{"r1"}},
		{"exponent 2^32-1", seeds[14], nil},
		{"EC key only", seeds[15], nil},
		{"encryption key only", seeds[16], nil},
		{"no kid", seeds[17], nil},
		{"a kid not printable ASCII", seeds[18], nil},
		{"a kid too long", seeds[19], nil},
		{"a kid with a quote and a backslash", seeds[20], []string{`k"\`}},
		{"null keys", seeds[21], nil},
		{"keys of the wrong type", seeds[22], nil},
		{"array", seeds[23], nil},
		{"null", seeds[24], nil},
		{"empty", seeds[25], nil},
	}
	is := is.New(t)
	is.Equal(len(tests), len(seeds)) // every seed is a case
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			checkKeySet(t, tc.doc, "")
			ks, err := parseJWKS(tc.doc)
			if tc.kids == nil {
				is.True(err != nil) // refused
				return
			}
			is.NoErr(err)
			is.Equal(len(ks), len(tc.kids))
			for _, kid := range tc.kids {
				_, ok := ks[kid]
				is.True(ok) // kid accepted
			}
		})
	}
}

// TestSmallOrderPointsForge: under every listed encoding, with either sign
// bit, R = identity, S = 0 signs some of 256 messages: refusing those keys
// refuses forgeries, not sound keys. A real key is not refused.
func TestSmallOrderPointsForge(t *testing.T) {
	for _, p := range smallOrderPoints {
		for _, sign := range []byte{0, 0x80} {
			t.Run(p+"/"+hex.EncodeToString([]byte{sign}), func(t *testing.T) {
				is := is.New(t)
				x, err := hex.DecodeString(p)
				is.NoErr(err)
				x[31] |= sign
				is.True(smallOrder(x)) // refused
				forged := false
				for i := 0; i < 256 && !forged; i++ {
					forged = ed25519.Verify(x, []byte{byte(i)}, forgedSig)
				}
				is.True(forged) // a forgery verifies under it
			})
		}
	}
	is := is.New(t)
	is.True(!smallOrder(ksEd.Public().(ed25519.PublicKey))) // a real key is not refused
}

// A fixed key set for the fuzzers (public key of an all-zero seed).
var fuzzKeys = func() keySet {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	return keySet{"k1": publicKey{alg: "EdDSA", ed: priv.Public().(ed25519.PublicKey)}}
}()

// FuzzParseSignatureHeader feeds arbitrary Licensing-Signature values to
// the client's check of an answer: it must never panic, and never accept a
// header that does not carry the key's real signature of the answer.
func FuzzParseSignatureHeader(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	date, body := "Fri, 20 Feb 2026 10:30:00 GMT", []byte("{}")
	f.Add(wire.FormatSignature("k1", ed25519.Sign(priv, wire.SignedString(200, "k1", date, body))))
	f.Add(`kid="k1", alg="ed25519", sig="` + base64.StdEncoding.EncodeToString(make([]byte, 64)) + `"`)
	f.Add(`kid="k1",alg="ed25519"`)
	f.Add(`sig="=="`)
	f.Add(`kid=k1`)
	f.Fuzz(func(t *testing.T, v string) {
		if fuzzKeys.verifyAnswer(200, v, date, body) != nil {
			return
		}
		kid, sig, err := wire.ParseSignature(v)
		if err != nil || kid != "k1" || !ed25519.Verify(fuzzKeys["k1"].ed, wire.SignedString(200, kid, date, body), sig) {
			t.Fatalf("accepted %q without the key's signature", v)
		}
	})
}
