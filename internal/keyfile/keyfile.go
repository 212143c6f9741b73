// Package keyfile reads and writes the signing key files of this module:
// the one loader behind licensing.LoadOrCreateSigningKeys and the
// reference server's signing keys, so both accept the same files and
// refuse the same ones with the same words.
package keyfile

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// MinRSABits is the smallest RSA signing key accepted.
const MinRSABits = 2048

// Parse reads an Ed25519 or RSA private key from the first PEM block of
// data: a "PRIVATE KEY" block (PKCS #8) or, for RSA, an "RSA PRIVATE KEY"
// block (PKCS #1). A block of another type (a public key, a certificate)
// or an encrypted block (Proc-Type header) is refused.
func Parse(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted {
		return nil, errors.New("an encrypted PEM block; give the key unencrypted (mode 0600)")
	}
	if block.Type != "PRIVATE KEY" && block.Type != "RSA PRIVATE KEY" {
		return nil, fmt.Errorf("a PEM block of type %q, not PRIVATE KEY or RSA PRIVATE KEY", block.Type)
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		switch k := k.(type) {
		case ed25519.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS #8 or PKCS #1 private key")
}

// Marshal encodes key as a PKCS #8 PEM block.
func Marshal(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Read reads the private key file at path. A missing file gives (nil, nil);
// an unreadable or unparsable one an error that names the path.
func Read(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	key, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// Pair checks the two signing keys read from edPath and rsaPath: an
// Ed25519 key and an RSA key of at least MinRSABits, naming the file that
// holds the wrong one.
func Pair(edPath string, ed crypto.Signer, rsaPath string, rk crypto.Signer) (ed25519.PrivateKey, *rsa.PrivateKey, error) {
	edKey, ok := ed.(ed25519.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not an Ed25519 key", edPath)
	}
	rsaKey, ok := rk.(*rsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not an RSA key", rsaPath)
	}
	if rsaKey.N.BitLen() < MinRSABits {
		return nil, nil, fmt.Errorf("%s: the RSA signing key has %d bits; it must have at least %d", rsaPath, rsaKey.N.BitLen(), MinRSABits)
	}
	return edKey, rsaKey, nil
}
