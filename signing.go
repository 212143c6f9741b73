package licensing

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/licensekit/licensing/internal/wire"
)

// Signature algorithms of offline tokens.
const (
	AlgEdDSA = wire.AlgEdDSA
	AlgRS256 = wire.AlgRS256
)

// SignatureHeader carries the signature of a signed answer; docs/API.md
// gives the signed string.
const SignatureHeader = wire.SignatureHeader

// SigningKeys are the keys a Service signs offline tokens and answers with:
// always an Ed25519 key, and optionally an RSA key (2048 bits or more) for
// RS256 tokens. Each key's id (kid) is its RFC 7638 JWK thumbprint.
type SigningKeys struct {
	ed     ed25519.PrivateKey
	edKID  string
	rsa    *rsa.PrivateKey
	rsaKID string
	jwks   []byte
}

// NewSigningKeys returns the signing keys for ed (required) and rsaKey (nil
// for none; at least 2048 bits otherwise).
func NewSigningKeys(ed ed25519.PrivateKey, rsaKey *rsa.PrivateKey) (*SigningKeys, error) {
	if len(ed) != ed25519.PrivateKeySize {
		return nil, configError("an Ed25519 signing key is required")
	}
	k := &SigningKeys{ed: ed}
	edPub := ed.Public().(ed25519.PublicKey)
	k.edKID = thumbprint(map[string]string{"crv": "Ed25519", "kty": "OKP", "x": b64url(edPub)})
	keys := []map[string]string{{"kty": "OKP", "crv": "Ed25519", "x": b64url(edPub), "kid": k.edKID, "alg": AlgEdDSA, "use": "sig"}}
	if rsaKey != nil {
		if rsaKey.N.BitLen() < 2048 {
			return nil, configError("the RSA signing key must have at least 2048 bits")
		}
		k.rsa = rsaKey
		n, e := b64url(rsaKey.N.Bytes()), b64url(big.NewInt(int64(rsaKey.E)).Bytes())
		k.rsaKID = thumbprint(map[string]string{"e": e, "kty": "RSA", "n": n})
		keys = append(keys, map[string]string{"kty": "RSA", "n": n, "e": e, "kid": k.rsaKID, "alg": AlgRS256, "use": "sig"})
	}
	k.jwks, _ = json.Marshal(map[string]any{"keys": keys})
	return k, nil
}

// GenerateSigningKeys returns a fresh Ed25519 key, and an RSA key of
// rsaBits when rsaBits > 0.
func GenerateSigningKeys(rsaBits int) (*SigningKeys, error) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var rk *rsa.PrivateKey
	if rsaBits > 0 {
		if rk, err = rsa.GenerateKey(rand.Reader, rsaBits); err != nil {
			return nil, err
		}
	}
	return NewSigningKeys(ed, rk)
}

// JWKS returns the public keys as a JSON Web Key Set document.
func (k *SigningKeys) JWKS() []byte { return append([]byte(nil), k.jwks...) }

// KeyID returns the kid of the Ed25519 key, which signs answers.
func (k *SigningKeys) KeyID() string { return k.edKID }

// HasRSA reports whether RS256 tokens can be issued.
func (k *SigningKeys) HasRSA() bool { return k.rsa != nil }

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// thumbprint is RFC 7638: SHA-256 of the required members in lexical order.
func thumbprint(members map[string]string) string {
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(n) + ":" + strconv.Quote(members[n]))
	}
	b.WriteByte('}')
	sum := sha256.Sum256([]byte(b.String()))
	return b64url(sum[:])
}

// signJWT returns a compact JWS of claims with alg, typ and kid in its header.
func (k *SigningKeys) signJWT(alg string, claims any) (string, error) {
	var kid string
	switch alg {
	case AlgEdDSA:
		kid = k.edKID
	case AlgRS256:
		if k.rsa == nil {
			return "", errors.New("no RSA key")
		}
		kid = k.rsaKID
	default:
		return "", fmt.Errorf("unknown alg %q", alg)
	}
	header, _ := json.Marshal(wire.JWTHeader{Alg: alg, Typ: "JWT", Kid: kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64url(header) + "." + b64url(payload)
	var sig []byte
	if alg == AlgEdDSA {
		sig = ed25519.Sign(k.ed, []byte(input))
	} else {
		sum := sha256.Sum256([]byte(input))
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k.rsa, crypto.SHA256, sum[:]); err != nil {
			return "", err
		}
	}
	return input + "." + b64url(sig), nil
}

// signAnswer returns the Licensing-Signature header value for an answer:
// kid="...", alg="ed25519", sig="<standard base64 of the Ed25519 signature>".
func (k *SigningKeys) signAnswer(status int, date string, body []byte) string {
	return wire.FormatSignature(k.edKID, ed25519.Sign(k.ed, wire.SignedString(status, k.edKID, date, body)))
}

// ParsePrivateKeyPEM reads an Ed25519 or RSA private key from PEM (PKCS #8,
// or PKCS #1 for RSA).
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, configError("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		switch k := k.(type) {
		case ed25519.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		}
		return nil, configError(fmt.Sprintf("unsupported private key type %T", k))
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, configError("not a PKCS #8 or PKCS #1 private key")
}

// MarshalPrivateKeyPEM encodes key as a PKCS #8 PEM block.
func MarshalPrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
