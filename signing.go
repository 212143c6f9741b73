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
	"slices"
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

// signatureHeader carries the signature of a signed answer; docs/API.md
// gives the signed string.
const signatureHeader = wire.SignatureHeader

// SigningKeys are the keys a Service signs offline tokens and answers with:
// always an Ed25519 key, and optionally an RSA key (2048 bits or more) for
// RS256 tokens. Each key's id (kid) is its RFC 7638 JWK thumbprint. Retired
// public keys (see WithRetired) are published but never sign.
type SigningKeys struct {
	ed     ed25519.PrivateKey
	edKID  string
	rsa    *rsa.PrivateKey
	rsaKID string
	keys   []publicKey // active first (Ed25519, RSA), then retired
	jwks   []byte
}

// publicKey is one published key: its JWK members and its PEM block.
type publicKey struct {
	jwk map[string]string
	pem []byte
}

// newPublicKey describes pub (Ed25519 or RSA of at least 2048 bits).
func newPublicKey(pub crypto.PublicKey) (publicKey, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return publicKey{}, configError(fmt.Sprintf("unsupported public key type %T", pub))
	}
	pk := publicKey{pem: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		if len(pub) != ed25519.PublicKeySize {
			return publicKey{}, configError("an Ed25519 public key must be 32 bytes")
		}
		x := b64url(pub)
		pk.jwk = map[string]string{"kty": "OKP", "crv": "Ed25519", "x": x, "alg": AlgEdDSA, "use": "sig",
			"kid": thumbprint(map[string]string{"crv": "Ed25519", "kty": "OKP", "x": x})}
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return publicKey{}, configError("an RSA signing key must have at least 2048 bits")
		}
		n, e := b64url(pub.N.Bytes()), b64url(big.NewInt(int64(pub.E)).Bytes())
		pk.jwk = map[string]string{"kty": "RSA", "n": n, "e": e, "alg": AlgRS256, "use": "sig",
			"kid": thumbprint(map[string]string{"e": e, "kty": "RSA", "n": n})}
	default:
		return publicKey{}, configError(fmt.Sprintf("unsupported public key type %T", pub))
	}
	return pk, nil
}

// NewSigningKeys returns the signing keys for ed (required) and rsaKey (nil
// for none; at least 2048 bits otherwise).
func NewSigningKeys(ed ed25519.PrivateKey, rsaKey *rsa.PrivateKey) (*SigningKeys, error) {
	if len(ed) != ed25519.PrivateKeySize {
		return nil, configError("an Ed25519 signing key is required")
	}
	edPub, err := newPublicKey(ed.Public())
	if err != nil {
		return nil, err
	}
	k := &SigningKeys{ed: ed, edKID: edPub.jwk["kid"], keys: []publicKey{edPub}}
	if rsaKey != nil {
		rsaPub, err := newPublicKey(&rsaKey.PublicKey)
		if err != nil {
			return nil, configError("the RSA signing key must have at least 2048 bits")
		}
		k.rsa, k.rsaKID = rsaKey, rsaPub.jwk["kid"]
		k.keys = append(k.keys, rsaPub)
	}
	return k.publish(), nil
}

// WithRetired returns a copy of k that also publishes pubs, public keys
// (ed25519.PublicKey or *rsa.PublicKey of at least 2048 bits) that no longer
// sign, after its own keys in JWKS and PublicKeysPEM: clients deployed with
// them keep verifying what they signed. A key already published is skipped.
// k itself is unchanged.
func (k *SigningKeys) WithRetired(pubs ...crypto.PublicKey) (*SigningKeys, error) {
	c := *k
	c.keys = append([]publicKey(nil), k.keys...)
	for _, pub := range pubs {
		pk, err := newPublicKey(pub)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(c.keys, func(o publicKey) bool { return o.jwk["kid"] == pk.jwk["kid"] }) {
			c.keys = append(c.keys, pk)
		}
	}
	return c.publish(), nil
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

// JWKS returns the public keys as a JSON Web Key Set document: the Ed25519
// key, the RSA key if any, then the retired keys.
func (k *SigningKeys) JWKS() []byte { return append([]byte(nil), k.jwks...) }

// publish renders the JWKS of k.keys.
func (k *SigningKeys) publish() *SigningKeys {
	keys := make([]map[string]string, len(k.keys))
	for i, pk := range k.keys {
		keys[i] = pk.jwk
	}
	k.jwks, _ = json.Marshal(map[string]any{"keys": keys})
	return k
}

// PublicKeysPEM returns every public key as a PEM "PUBLIC KEY" block (PKIX):
// the RSA key first, so that tools reading only the first block (PHP's
// openssl_verify, most shell tooling) get the RS256 key, then the Ed25519
// key, then the retired keys.
func (k *SigningKeys) PublicKeysPEM() []byte {
	var out []byte
	for _, pk := range k.keys[1:] { // RSA, if any, then retired, in order
		if pk.jwk["kid"] == k.rsaKID {
			out = append(out, pk.pem...)
		}
	}
	out = append(out, k.keys[0].pem...)
	for _, pk := range k.keys[1:] {
		if pk.jwk["kid"] != k.rsaKID {
			out = append(out, pk.pem...)
		}
	}
	return out
}

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
