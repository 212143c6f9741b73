package client

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"strconv"
	"strings"
)

// keySet is a parsed JWKS: the server's public keys by kid.
type keySet map[string]publicKey

type publicKey struct {
	alg string // EdDSA or RS256
	ed  ed25519.PublicKey
	rsa *rsa.PublicKey
}

// parseJWKS reads a JSON Web Key Set with Ed25519 (OKP) and RSA keys. Keys
// of other types are skipped; a set with no usable key is an error.
func parseJWKS(doc []byte) (keySet, error) {
	var set struct {
		Keys []struct {
			Kty, Crv, X, N, E, Kid, Alg, Use string
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("client: public keys: %w", err)
	}
	ks := keySet{}
	for _, k := range set.Keys {
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		switch {
		case k.Kty == "OKP" && k.Crv == "Ed25519":
			x, err := base64.RawURLEncoding.DecodeString(k.X)
			if err != nil || len(x) != ed25519.PublicKeySize {
				continue
			}
			ks[k.Kid] = publicKey{alg: "EdDSA", ed: ed25519.PublicKey(x)}
		case k.Kty == "RSA":
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(n) < 256 || len(e) == 0 || len(e) > 4 {
				continue // at least 2048 bits
			}
			ks[k.Kid] = publicKey{alg: "RS256", rsa: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}}
		}
	}
	if len(ks) == 0 {
		return nil, errors.New("client: public keys: no Ed25519 or RSA signing key")
	}
	return ks, nil
}

// tokenClaims are the claims of an offline token.
type tokenClaims struct {
	Issuer    string         `json:"iss"`
	Subject   string         `json:"sub"`
	Plan      string         `json:"plan"`
	Features  map[string]any `json:"features"`
	OrgName   string         `json:"orgName"`
	IssuedAt  int64          `json:"iat"`
	ExpiresAt int64          `json:"exp"`
	ID        string         `json:"jti"`
}

// maxTokenLength bounds what parseToken reads.
const maxTokenLength = 16 << 10

var errToken = errors.New("client: offline token is malformed or its signature does not verify")

// parseToken verifies a compact JWS with the key its kid names and returns
// its claims. It checks structure and signature only; callers check iss and
// exp.
func parseToken(ks keySet, token string) (tokenClaims, error) {
	if len(token) > maxTokenLength {
		return tokenClaims{}, errToken
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return tokenClaims{}, errToken
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return tokenClaims{}, errToken
	}
	var h struct{ Alg, Typ, Kid string }
	if err := json.Unmarshal(hb, &h); err != nil {
		return tokenClaims{}, errToken
	}
	k, ok := ks[h.Kid]
	if !ok || k.alg != h.Alg { // the key decides the algorithm, never the token alone
		return tokenClaims{}, errToken
	}
	input := []byte(parts[0] + "." + parts[1])
	switch k.alg {
	case "EdDSA":
		if !ed25519.Verify(k.ed, input, sig) {
			return tokenClaims{}, errToken
		}
	case "RS256":
		sum := sha256.Sum256(input)
		if rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, sum[:], sig) != nil {
			return tokenClaims{}, errToken
		}
	default:
		return tokenClaims{}, errToken
	}
	var c tokenClaims
	if err := json.Unmarshal(pb, &c); err != nil {
		return tokenClaims{}, errToken
	}
	return c, nil
}

// signature is a parsed Licensing-Signature header.
type signature struct {
	kid string
	sig []byte
}

var errSignature = errors.New("client: answer is not signed by a known key")

// parseSignatureHeader reads `kid="...", alg="ed25519", sig="<base64>"`.
// Parameters may come in any order; unknown parameters are an error.
func parseSignatureHeader(v string) (signature, error) {
	if len(v) > 1024 {
		return signature{}, errSignature
	}
	var s signature
	alg := ""
	for _, part := range strings.Split(v, ",") {
		name, quoted, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return signature{}, errSignature
		}
		val, err := strconv.Unquote(quoted)
		if err != nil || !strings.HasPrefix(quoted, `"`) {
			return signature{}, errSignature
		}
		switch name {
		case "kid":
			s.kid = val
		case "alg":
			alg = val
		case "sig":
			if s.sig, err = base64.StdEncoding.DecodeString(val); err != nil {
				return signature{}, errSignature
			}
		default:
			return signature{}, errSignature
		}
	}
	if alg != "ed25519" || s.kid == "" || len(s.sig) != ed25519.SignatureSize {
		return signature{}, errSignature
	}
	return s, nil
}

// signedString mirrors licensing.SignedString.
func signedString(status int, kid, date string, body []byte) []byte {
	s := []byte("licensing-signature-v1\n" + strconv.Itoa(status) + "\n" + kid + "\n" + date + "\n")
	return append(s, body...)
}

// verifyAnswer checks a signed answer's header against the key set.
func (ks keySet) verifyAnswer(status int, header, date string, body []byte) error {
	s, err := parseSignatureHeader(header)
	if err != nil {
		return err
	}
	k, ok := ks[s.kid]
	if !ok || k.ed == nil {
		return errSignature
	}
	if !ed25519.Verify(k.ed, signedString(status, s.kid, date, body), s.sig) {
		return errSignature
	}
	return nil
}

// keyLooksValid checks a 64-hex license key's CRC-32 checksum locally.
func keyLooksValid(k string) bool {
	k = strings.ToLower(strings.TrimSpace(k))
	if len(k) != 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !('0' <= k[i] && k[i] <= '9' || 'a' <= k[i] && k[i] <= 'f') {
			return false
		}
	}
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(k[:56]))) == k[56:]
}
