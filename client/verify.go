package client

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/licensekit/licensing/internal/wire"
)

// keySet is a parsed JWKS: the server's public keys by kid.
type keySet map[string]publicKey

type publicKey struct {
	alg string // EdDSA or RS256
	ed  ed25519.PublicKey
	rsa *rsa.PublicKey
}

// ed25519KIDs returns the kids of the Ed25519 keys in ks, sorted.
func (ks keySet) ed25519KIDs() []string {
	var kids []string
	for kid, k := range ks {
		if k.ed != nil {
			kids = append(kids, kid)
		}
	}
	slices.Sort(kids)
	return kids
}

// hasEd25519 reports whether ks holds an Ed25519 key: the only kind that
// signs the server's answers and revocation lists.
func (ks keySet) hasEd25519() bool {
	for _, k := range ks {
		if k.ed != nil {
			return true
		}
	}
	return false
}

// RSA key sizes parseJWKS accepts: at least 2048 bits, as the server
// requires; at most 16384, so that a hostile key set cannot make each
// verification take seconds.
const (
	minRSABits = 2048
	maxRSABits = 16384
)

// parseJWKS reads a JSON Web Key Set with Ed25519 (OKP) and RSA keys. Keys
// of other types, and keys no signature could soundly be checked with (an
// RSA modulus out of range or even, an exponent that is even or out of
// range, an Ed25519 point of small order, an alg that is not the key
// type's, a kid that a signed answer's header cannot name), are skipped; a set with no usable key is an error, and so is a
// kid that two usable keys share.
func parseJWKS(doc []byte) (keySet, error) {
	var set struct {
		Keys []struct {
			Kty, Crv, X, N, E, Kid, Alg, Use string
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("client: Config.PublicKeys is not a JWKS (%v): %s", err, wantPublicKeys)
	}
	ks := keySet{}
	for i, k := range set.Keys {
		if !usableKID(k.Kid) || (k.Use != "" && k.Use != "sig") {
			continue
		}
		var pk publicKey
		switch {
		case k.Kty == "OKP" && k.Crv == "Ed25519":
			x, err := base64.RawURLEncoding.DecodeString(k.X)
			if err != nil || len(x) != ed25519.PublicKeySize || smallOrder(x) {
				continue
			}
			pk = publicKey{alg: wire.AlgEdDSA, ed: ed25519.PublicKey(x)}
		case k.Kty == "RSA":
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(n) > maxRSABits/8+1 || len(e) == 0 || len(e) > 4 {
				continue
			}
			// the bit length, not the byte count: leading zero bytes do not make a key longer
			bn, be := new(big.Int).SetBytes(n), new(big.Int).SetBytes(e).Int64()
			if bn.BitLen() < minRSABits || bn.BitLen() > maxRSABits || bn.Bit(0) == 0 || be < 3 || be > math.MaxInt32 || be%2 == 0 {
				continue
			}
			pk = publicKey{alg: wire.AlgRS256, rsa: &rsa.PublicKey{N: bn, E: int(be)}}
		default:
			continue
		}
		if k.Alg != "" && k.Alg != pk.alg {
			continue // a key declared for another algorithm
		}
		if _, dup := ks[k.Kid]; dup {
			return nil, fmt.Errorf("client: Config.PublicKeys: keys[%d]: kid %q names two keys", i, k.Kid)
		}
		ks[k.Kid] = pk
	}
	if len(ks) == 0 {
		return nil, errors.New("client: Config.PublicKeys: no Ed25519 or RSA signing key in the JWKS: " + wantPublicKeys)
	}
	return ks, nil
}

// parsePublicKeys reads Config.PublicKeys: PEM "PUBLIC KEY" blocks (what
// `licensing-server public-keys` prints and GET .../public-keys.pem serves)
// or a JWKS (GET .../public-keys), with or without a UTF-8 byte order mark
// before it (what Windows editors write), or in UTF-16 after its byte
// order mark (what Windows PowerShell 5 writes for `>`). Anything else is
// an error that says what is expected.
func parsePublicKeys(doc []byte) (keySet, error) {
	doc = fromUTF16(doc)
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("\xef\xbb\xbf")))
	switch {
	case len(trimmed) == 0:
		return nil, errors.New("client: Config.PublicKeys is empty: " + wantPublicKeys)
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN ")):
		return parsePEM(trimmed)
	case trimmed[0] == '{':
		return parseJWKS(trimmed)
	case bytes.Contains(trimmed, []byte("\n-----BEGIN ")):
		return nil, errors.New("client: Config.PublicKeys has text before the first PEM block: keep only the blocks, from -----BEGIN to -----END: " + wantPublicKeys)
	}
	return nil, errors.New("client: Config.PublicKeys is neither PEM nor JSON: " + wantPublicKeys)
}

// fromUTF16 returns doc in UTF-8 when it is UTF-16 after a byte order mark
// (FF FE little-endian, FE FF big-endian), else doc itself.
func fromUTF16(doc []byte) []byte {
	var order binary.ByteOrder
	switch {
	case len(doc)%2 != 0:
		return doc
	case bytes.HasPrefix(doc, []byte{0xff, 0xfe}):
		order = binary.LittleEndian
	case bytes.HasPrefix(doc, []byte{0xfe, 0xff}):
		order = binary.BigEndian
	default:
		return doc
	}
	units := make([]uint16, 0, len(doc)/2-1)
	for i := 2; i < len(doc); i += 2 {
		units = append(units, order.Uint16(doc[i:]))
	}
	return []byte(string(utf16.Decode(units)))
}

// wantPublicKeys says what Config.PublicKeys must hold.
const wantPublicKeys = "want the license server's public keys as PEM (the output of `licensing-server public-keys`, or GET " +
	wire.APIPrefix + wire.PathPublicKeysPEM + ") or as a JWKS (GET " + wire.APIPrefix + wire.PathPublicKeys + "), embedded in the product"

// parsePEM reads one or more PEM "PUBLIC KEY" (PKIX) blocks of Ed25519 and
// RSA keys, each named by its RFC 7638 thumbprint as the server names it.
// The same rules as parseJWKS hold: keys no signature could soundly be
// checked with (an Ed25519 point of small order, an RSA key out of range)
// and keys of other types are skipped, and a document with no usable key
// is an error. So is a block of another type (a private key above all),
// and text after the last block.
func parsePEM(doc []byte) (keySet, error) {
	ks := keySet{}
	for i, rest := 1, doc; len(bytes.TrimSpace(rest)) > 0; i++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("client: Config.PublicKeys: PEM block %d is malformed, or text follows the last block: %s", i, wantPublicKeys)
		}
		if b.Type != "PUBLIC KEY" {
			if strings.Contains(b.Type, "PRIVATE") {
				return nil, fmt.Errorf("client: Config.PublicKeys: PEM block %d is a %q, not a \"PUBLIC KEY\"; never embed a private key: %s", i, b.Type, wantPublicKeys)
			}
			return nil, fmt.Errorf("client: Config.PublicKeys: PEM block %d is a %q, not a \"PUBLIC KEY\": %s", i, b.Type, wantPublicKeys)
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("client: Config.PublicKeys: PEM block %d: %v", i, err)
		}
		var pk publicKey
		var kid string
		switch pub := pub.(type) {
		case ed25519.PublicKey:
			if len(pub) != ed25519.PublicKeySize || smallOrder(pub) {
				continue
			}
			pk = publicKey{alg: wire.AlgEdDSA, ed: pub}
			kid = thumbprint(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`)
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits || pub.N.BitLen() > maxRSABits || pub.N.Bit(0) == 0 || pub.E < 3 || pub.E > math.MaxInt32 || pub.E%2 == 0 {
				continue
			}
			pk = publicKey{alg: wire.AlgRS256, rsa: pub}
			e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
			kid = thumbprint(`{"e":"` + e + `","kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(pub.N.Bytes()) + `"}`)
		default:
			continue // an EC key, say: the server signs with neither
		}
		ks[kid] = pk // the same key twice is the same kid: kept once
	}
	if len(ks) == 0 {
		return nil, errors.New("client: Config.PublicKeys: no Ed25519 or RSA public key (of 2048 to 16384 bits) in the PEM: " + wantPublicKeys)
	}
	return ks, nil
}

// thumbprint is RFC 7638's SHA-256 JWK thumbprint of members, the required
// members of a JWK in lexical order without spaces (base64url members need
// no escaping): the kid the server gives each key.
func thumbprint(members string) string {
	sum := sha256.Sum256([]byte(members))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// maxKIDLength bounds a key id: the server's are 43-character thumbprints,
// and a signed answer's header (wire.MaxSignatureHeaderLength) must hold it.
const maxKIDLength = 128

// usableKID reports whether kid can name a key both in a token and in a
// signed answer's header: 1 to maxKIDLength printable ASCII characters.
func usableKID(kid string) bool {
	if kid == "" || len(kid) > maxKIDLength {
		return false
	}
	for i := 0; i < len(kid); i++ {
		if kid[i] < 0x20 || kid[i] > 0x7e {
			return false
		}
	}
	return true
}

// smallOrderPoints are the encodings, sign bit aside, of the Ed25519 points
// of small order (libsodium's list): the identity, the points of order 2, 4
// and 8, and the non-canonical encodings p and p+1. With such a public key,
// R = identity and S = 0 is a valid signature of every message (the
// identity) or of one message in eight: no key set may hold one.
var smallOrderPoints = [...]string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

// smallOrder reports whether the Ed25519 public key x is a point of small
// order (in any of its encodings).
func smallOrder(x []byte) bool {
	y := make([]byte, len(x))
	copy(y, x)
	y[len(y)-1] &= 0x7f // the sign of x
	for _, p := range smallOrderPoints {
		if hex.EncodeToString(y) == p {
			return true
		}
	}
	return false
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
	if !ok && usableKID(h.Kid) {
		return wire.TokenClaims{}, fmt.Errorf("client: the offline token is signed with key %q, which Config.PublicKeys does not hold (it holds %s): embed the public keys of the license server that issued the token (`licensing-server public-keys` there)",
			h.Kid, strings.Join(slices.Sorted(maps.Keys(ks)), ", "))
	}
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

// verifyAnswer checks a signed answer's SignatureHeader value against the
// key set.
func (ks keySet) verifyAnswer(status int, header, date string, body []byte) error {
	kid, sig, err := wire.ParseSignature(header)
	if err != nil {
		return fmt.Errorf("the %s header is malformed", wire.SignatureHeader)
	}
	k, ok := ks[kid]
	if !ok || k.ed == nil {
		return fmt.Errorf("the answer is signed with key %q, which Config.PublicKeys does not hold (it holds %s): if Config.ServerURL names another license server than the keys' (a staging one, say) or the vendor replaced its keys, embed the public keys the vendor gives for the server at Config.ServerURL; else the answer is forged",
			kid, strings.Join(ks.ed25519KIDs(), ", "))
	}
	if !ed25519.Verify(k.ed, wire.SignedString(status, kid, date, body), sig) {
		return fmt.Errorf("the signature of key %q does not verify over the answer's status, date and body: the answer was altered on its way (a proxy that rewrites bodies, statuses or dates, or a forgery)", kid)
	}
	return nil
}
