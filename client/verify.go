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
	"math/big"
	"strings"

	"github.com/licensekit/licensing/internal/wire"
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
			ks[k.Kid] = publicKey{alg: wire.AlgEdDSA, ed: ed25519.PublicKey(x)}
		case k.Kty == "RSA":
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(n) < 256 || len(e) == 0 || len(e) > 4 {
				continue // at least 2048 bits
			}
			ks[k.Kid] = publicKey{alg: wire.AlgRS256, rsa: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}}
		}
	}
	if len(ks) == 0 {
		return nil, errors.New("client: public keys: no Ed25519 or RSA signing key")
	}
	return ks, nil
}

// maxTokenLength bounds what parseToken reads.
const maxTokenLength = 16 << 10

var errToken = errors.New("client: offline token is malformed or its signature does not verify")

// parseToken verifies a compact JWS with the key its kid names and returns
// its claims. It checks structure and signature only; callers check iss and
// exp.
func parseToken(ks keySet, token string) (wire.TokenClaims, error) {
	if len(token) > maxTokenLength {
		return wire.TokenClaims{}, errToken
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return wire.TokenClaims{}, errToken
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return wire.TokenClaims{}, errToken
	}
	var h wire.JWTHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return wire.TokenClaims{}, errToken
	}
	k, ok := ks[h.Kid]
	if !ok || k.alg != h.Alg { // the key decides the algorithm, never the token alone
		return wire.TokenClaims{}, errToken
	}
	input := []byte(parts[0] + "." + parts[1])
	switch k.alg {
	case wire.AlgEdDSA:
		if !ed25519.Verify(k.ed, input, sig) {
			return wire.TokenClaims{}, errToken
		}
	case wire.AlgRS256:
		sum := sha256.Sum256(input)
		if rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, sum[:], sig) != nil {
			return wire.TokenClaims{}, errToken
		}
	default:
		return wire.TokenClaims{}, errToken
	}
	var c wire.TokenClaims
	if err := json.Unmarshal(pb, &c); err != nil {
		return wire.TokenClaims{}, errToken
	}
	return c, nil
}

var errSignature = errors.New("client: answer is not signed by a known key")

// verifyAnswer checks a signed answer's SignatureHeader value against the
// key set.
func (ks keySet) verifyAnswer(status int, header, date string, body []byte) error {
	kid, sig, err := wire.ParseSignature(header)
	if err != nil {
		return errSignature
	}
	k, ok := ks[kid]
	if !ok || k.ed == nil {
		return errSignature
	}
	if !ed25519.Verify(k.ed, wire.SignedString(status, kid, date, body), sig) {
		return errSignature
	}
	return nil
}
