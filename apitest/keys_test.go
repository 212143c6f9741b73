package apitest

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// jwk is one key of the JWKS, decoded.
type jwk struct {
	alg string
	pub crypto.PublicKey // ed25519.PublicKey or *rsa.PublicKey
}

var jwksCache sync.Map // *server -> map[string]jwk

// publicKeys returns srv's JWKS by kid, in document order in the slice.
func publicKeys(srv *server) (map[string]jwk, []string, error) {
	type cached struct {
		keys  map[string]jwk
		order []string
	}
	if v, ok := jwksCache.Load(srv); ok {
		c := v.(cached)
		return c.keys, c.order, nil
	}
	res, err := http.Get(srv.url + "/api/v1/licensing/public-keys")
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct{ Kty, Crv, X, N, E, Kid, Alg string } `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil {
		return nil, nil, fmt.Errorf("JWKS: %w", err)
	}
	c := cached{keys: map[string]jwk{}}
	for _, k := range set.Keys {
		switch k.Kty {
		case "OKP":
			x, err := base64.RawURLEncoding.DecodeString(k.X)
			if err != nil || k.Crv != "Ed25519" || len(x) != ed25519.PublicKeySize {
				return nil, nil, fmt.Errorf("JWKS: bad Ed25519 key %q", k.Kid)
			}
			c.keys[k.Kid] = jwk{k.Alg, ed25519.PublicKey(x)}
		case "RSA":
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
				return nil, nil, fmt.Errorf("JWKS: bad RSA key %q", k.Kid)
			}
			c.keys[k.Kid] = jwk{k.Alg, &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}}
		default:
			return nil, nil, fmt.Errorf("JWKS: key %q of type %q", k.Kid, k.Kty)
		}
		c.order = append(c.order, k.Kid)
	}
	jwksCache.Store(srv, c)
	return c.keys, c.order, nil
}

var sigHeader = regexp.MustCompile(`^kid="([^"]+)", alg="ed25519", sig="([^"]+)"$`)

// checkSignature verifies a signed answer as docs/API.md describes it:
// Ed25519 over "licensing-signature-v1\n" + status + "\n" + kid + "\n" +
// Date + "\n" + body, with a key of the server's JWKS.
func checkSignature(srv *server, a answer) []string {
	h := a.res.Header.Get("Licensing-Signature")
	m := sigHeader.FindStringSubmatch(h)
	if m == nil {
		return []string{fmt.Sprintf("signed answer expected: Licensing-Signature %q", h)}
	}
	keys, _, err := publicKeys(srv)
	if err != nil {
		return []string{err.Error()}
	}
	pub, ok := keys[m[1]].pub.(ed25519.PublicKey)
	if !ok {
		return []string{fmt.Sprintf("Licensing-Signature kid %q is not an Ed25519 key of the JWKS", m[1])}
	}
	sig, err := base64.StdEncoding.DecodeString(m[2])
	if err != nil {
		return []string{"Licensing-Signature sig is not standard base64"}
	}
	msg := fmt.Sprintf("licensing-signature-v1\n%d\n%s\n%s\n", a.status, m[1], a.res.Header.Get("Date")) + string(a.body)
	if !ed25519.Verify(pub, []byte(msg), sig) {
		return []string{"Licensing-Signature does not verify over the signed string"}
	}
	return nil
}

// tokenClaims are the claims of an offline token, in their documented order.
var tokenClaims = []string{"iss", "sub", "plan", "features", "orgName", "iat", "exp", "jti"}

// checkToken verifies an offline token: header alg, typ and kid, the
// signature with the JWKS key kid names, and the claims.
func checkToken(srv *server, jwt, wantAlg, keyID string) []string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return []string{"jwt is not a compact JWS"}
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr struct{ Alg, Typ, Kid string }
	json.Unmarshal(raw, &hdr)
	if hdr.Alg != wantAlg || hdr.Typ != "JWT" || hdr.Kid == "" {
		return []string{fmt.Sprintf("token header %s, want alg %q, typ \"JWT\" and a kid", raw, wantAlg)}
	}
	keys, _, err := publicKeys(srv)
	if err != nil {
		return []string{err.Error()}
	}
	k, ok := keys[hdr.Kid]
	if !ok || k.alg != hdr.Alg {
		return []string{fmt.Sprintf("token kid %q is not a %s key of the JWKS", hdr.Kid, hdr.Alg)}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return []string{"token signature is not base64url"}
	}
	input := []byte(parts[0] + "." + parts[1])
	switch pub := k.pub.(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, input, sig)
	case *rsa.PublicKey:
		sum := sha256.Sum256(input)
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
	}
	if !ok {
		return []string{"token signature does not verify with the JWKS key"}
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var probs []string
	dec := json.NewDecoder(bytes.NewReader(payload))
	var names []string
	if t, _ := dec.Token(); t == json.Delim('{') {
		for dec.More() {
			name, _ := dec.Token()
			names = append(names, fmt.Sprint(name))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
	}
	if !slices.Equal(names, tokenClaims) {
		probs = append(probs, fmt.Sprintf("token claims %v, want exactly %v", names, tokenClaims))
	}
	var c struct {
		Iss, Sub, Jti string
		Iat, Exp      int64
	}
	json.Unmarshal(payload, &c)
	if c.Iss == "" || c.Sub == "" || c.Exp <= c.Iat || (keyID != "" && c.Jti != keyID) {
		probs = append(probs, fmt.Sprintf("token claims %s: want iss and sub set, exp after iat, jti %q", payload, keyID))
	}
	return probs
}

// checkPEM checks the PEM route's answer against the JWKS: one PUBLIC KEY
// block per key, nothing else, the RSA key first.
func checkPEM(srv *server, body []byte) []string {
	keys, order, err := publicKeys(srv)
	if err != nil {
		return []string{err.Error()}
	}
	var got []crypto.PublicKey
	rest := body
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" || len(b.Headers) > 0 {
			return []string{fmt.Sprintf("PEM block %q with headers %v, want PUBLIC KEY blocks only", b.Type, b.Headers)}
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return []string{"PEM block is not a PKIX public key: " + err.Error()}
		}
		got = append(got, k)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return []string{"text after the last PEM block"}
	}
	if len(got) != len(order) {
		return []string{fmt.Sprintf("%d PEM blocks, the JWKS has %d keys", len(got), len(order))}
	}
	if _, ok := got[0].(*rsa.PublicKey); !ok {
		return []string{"the first PEM block is not the RSA key"}
	}
	for _, g := range got {
		found := false
		for _, kid := range order {
			if eq, ok := keys[kid].pub.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(g) {
				found = true
			}
		}
		if !found {
			return []string{"a PEM key is not in the JWKS"}
		}
	}
	return nil
}
