package keyfile_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/keyfile"
)

var (
	pemKeysOnce       sync.Once
	edPEM, rsaPEM     []byte // PKCS #8
	rsaPKCS1, rsa1024 []byte
)

// pemKeys are an Ed25519 key (all-zero seed) and an RSA-2048 key as PKCS #8
// PEM, the RSA key again as PKCS #1, and an RSA-1024 key, made once.
func pemKeys() {
	pemKeysOnce.Do(func() {
		ed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		small, err := rsa.GenerateKey(rand.Reader, 1024)
		if err != nil {
			panic(err)
		}
		edPEM, _ = keyfile.Marshal(ed)
		rsaPEM, _ = keyfile.Marshal(rk)
		rsaPKCS1 = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)})
		rsa1024, _ = keyfile.Marshal(small)
	})
}

// privateKeySeeds are key files: the two a server makes, the RSA key as
// PKCS #1, then the hard cases.
func privateKeySeeds() [][]byte {
	pemKeys()
	block, _ := pem.Decode(edPEM)
	der := block.Bytes
	ecKey, _ := x509.MarshalPKCS8PrivateKey(mustECDH())
	return [][]byte{
		edPEM, rsaPEM, rsaPKCS1, rsa1024,
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), // a private key under another type
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der[:len(der)-1]}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecKey}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: der}),
		append(append([]byte("junk before\n"), edPEM...), rsaPEM...), // two keys: the first counts
		[]byte("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"),
		[]byte("-----BEGIN PRIVATE KEY-----\n"), []byte("not a key"), nil,
	}
}

func mustECDH() crypto.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// checkPrivateKey is the property of a key file: keyfile.Parse never
// panics; a key it accepts is an Ed25519 or a consistent RSA key that signs
// what its public key verifies, and survives keyfile.Marshal;
// NewSigningKeys takes it when it is Ed25519 or RSA of 2048 bits or more;
// and LoadOrCreateSigningKeys, given the file in either slot, either loads
// it or refuses naming the file.
func checkPrivateKey(t *testing.T, data []byte) {
	t.Helper()
	pemKeys()
	msg := []byte("signed")
	key, err := keyfile.Parse(data)
	if err == nil {
		switch k := key.(type) {
		case ed25519.PrivateKey:
			if len(k) != ed25519.PrivateKeySize || !ed25519.Verify(k.Public().(ed25519.PublicKey), msg, ed25519.Sign(k, msg)) {
				t.Fatal("accepted an Ed25519 key that does not sign")
			}
			if _, err := licensing.NewSigningKeys(k, nil); err != nil {
				t.Fatalf("NewSigningKeys refused an accepted Ed25519 key: %v", err)
			}
		case *rsa.PrivateKey:
			if err := k.Validate(); err != nil {
				t.Fatalf("accepted an inconsistent RSA key: %v", err)
			}
			if k.N.BitLen() <= 4096 { // larger keys sign slowly; Validate vouched for them
				sum := sha256.Sum256(msg)
				sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, sum[:])
				if err != nil || rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, sum[:], sig) != nil {
					t.Fatalf("accepted an RSA key that does not sign: %v", err)
				}
			}
			ed, _ := keyfile.Parse(edPEM)
			_, err := licensing.NewSigningKeys(ed.(ed25519.PrivateKey), k)
			if (err == nil) != (k.N.BitLen() >= 2048) {
				t.Fatalf("NewSigningKeys of a %d-bit RSA key: %v", k.N.BitLen(), err)
			}
		default:
			t.Fatalf("accepted a %T", key)
		}
		again, err := keyfile.Marshal(key)
		if err != nil {
			t.Fatalf("accepted key does not marshal: %v", err)
		}
		back, err := keyfile.Parse(again)
		if err != nil || !back.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
			t.Fatalf("accepted key does not survive a round trip: %v", err)
		}
	} else if m := err.Error(); !strings.Contains(m, "PEM") && !strings.Contains(m, "private key") {
		t.Fatalf("refusal %q does not say what a key file must be", err)
	}
	for _, slot := range []string{"signing-ed25519.pem", "signing-rsa.pem"} {
		dir := t.TempDir()
		for name, b := range map[string][]byte{"signing-ed25519.pem": edPEM, "signing-rsa.pem": rsaPEM} {
			if name == slot {
				b = data
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		keys, err := licensing.LoadOrCreateSigningKeys(dir)
		if err != nil {
			if !strings.Contains(err.Error(), filepath.Join(dir, slot)) {
				t.Fatalf("refusal %q does not name %s", err, slot)
			}
			continue
		}
		if keys == nil || !keys.HasRSA() {
			t.Fatal("loaded keys without an RSA key")
		}
	}
}

// FuzzParsePrivateKeyPEM feeds arbitrary key files to the signing key
// loader: see checkPrivateKey for the property.
func FuzzParsePrivateKeyPEM(f *testing.F) {
	for _, s := range privateKeySeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		checkPrivateKey(t, data)
	})
}

// TestParsePrivateKeyPEMHardCases: the seeds, with whether each is
// accepted, so that a plain go test covers them.
func TestParsePrivateKeyPEMHardCases(t *testing.T) {
	seeds := privateKeySeeds()
	tests := []struct {
		name   string
		accept bool
	}{
		{"Ed25519, PKCS #8", true},
		{"RSA-2048, PKCS #8", true},
		{"RSA-2048, PKCS #1", true},
		{"RSA-1024: parsed, refused by NewSigningKeys", true},
		{"a private key in a PUBLIC KEY block", false},
		{"PKCS #8 cut short by a byte", false},
		{"a P-256 key", false},
		{"an encrypted PEM block", false},
		{"junk, then two keys", true},
		{"bad base64", false},
		{"a header without a body", false},
		{"not PEM", false},
		{"empty", false},
	}
	is := is.New(t)
	is.Equal(len(tests), len(seeds)) // every seed is a case
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			checkPrivateKey(t, seeds[i])
			_, err := keyfile.Parse(seeds[i])
			is.Equal(err == nil, tc.accept)
		})
	}
}
