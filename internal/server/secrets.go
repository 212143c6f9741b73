package server

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/atomicfile"
	"github.com/licensekit/licensing/internal/keyfile"
)

// pepper is the server's pepper and where it came from.
type pepper struct {
	value  []byte
	source string // "the LICENSING_PEPPER environment variable" or "the file <path>"
	path   string // <data>/pepper
	fresh  bool   // generated now because the file is missing; not saved yet
}

// loadPepper returns LICENSING_PEPPER (hex) or the pepper kept in
// <data>/pepper. A missing file gives a fresh pepper that is saved only once
// the store has accepted it (savePepper).
func (m *Main) loadPepper() (pepper, error) {
	p := pepper{path: filepath.Join(m.DataDir, "pepper")}
	if v := m.Getenv("LICENSING_PEPPER"); v != "" {
		b, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(b) < licensing.MinPepperLength {
			return p, errors.New("LICENSING_PEPPER must be at least 32 bytes, hex encoded")
		}
		p.value, p.source = b, "the LICENSING_PEPPER environment variable"
		return p, nil
	}
	p.source = "the file " + p.path
	b, err := os.ReadFile(p.path)
	if errors.Is(err, os.ErrNotExist) {
		p.value, p.fresh = make([]byte, 32), true
		_, err = io.ReadFull(rand.Reader, p.value)
		return p, err
	}
	if err != nil {
		return p, err
	}
	if p.value, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil || len(p.value) < licensing.MinPepperLength {
		return p, fmt.Errorf("%s: not a hex pepper of at least 32 bytes", p.path)
	}
	return p, nil
}

// savePepper writes a fresh pepper to its file.
func (p *pepper) save() error {
	if !p.fresh {
		return nil
	}
	if err := atomicfile.Write(p.path, []byte(hex.EncodeToString(p.value)+"\n")); err != nil {
		return err
	}
	p.fresh = false
	return nil
}

// mismatch is the one-line refusal for a pepper the store does not know.
func (p *pepper) mismatch() error {
	if p.fresh {
		return fmt.Errorf("the file %s is missing, but the store already holds keys: with a new pepper every issued key would stop validating; restore the file (or set LICENSING_PEPPER to the original pepper)", p.path)
	}
	return fmt.Errorf("the pepper from %s is not the one the store was created with: every issued key would stop validating; restore the original pepper", p.source)
}

// pepperChecker is a store that remembers the fingerprint of its pepper
// (pgstore.Store): the first call records it, a later one with another
// fingerprint returns an error wrapping licensing.ErrPepperMismatch.
type pepperChecker interface {
	CheckPepper(ctx context.Context, fingerprint string) error
}

// checkPepper makes the store confirm the pepper (a fresh one is saved by
// then). The memory store, which starts empty, needs no check.
//
// The file store checks its fingerprint as it opens (openStore); a fresh
// pepper over a store with keys is refused before that (checkFreshPepper).
func (m *Main) checkPepper(ctx context.Context, p *pepper, store licensing.Store) error {
	fp := licensing.PepperFingerprint(p.value)
	switch m.StoreKind {
	case "memory":
	case "file": // checked by filestore.Open (Options.PepperFingerprint)
	default:
		if pc, ok := store.(pepperChecker); ok {
			if err := pc.CheckPepper(ctx, fp); errors.Is(err, licensing.ErrPepperMismatch) {
				return p.mismatch()
			} else if err != nil {
				return fmt.Errorf("check the pepper: %w", err)
			}
		}
	}
	return nil
}

// signingRecord is <data>/signing-keys.json: the public half of every key
// the server has signed with. A key it lists that goes missing, or changes,
// stops the start unless -rotate-signing-keys is given; the replaced key is
// then retired, published until Until.
type signingRecord struct {
	Keys    []recordedKey `json:"keys"`
	Retired []recordedKey `json:"retired"`
}

type recordedKey struct {
	KID       string     `json:"kid"`
	Alg       string     `json:"alg"`
	PublicKey string     `json:"publicKey"` // PEM
	Since     time.Time  `json:"since"`
	RetiredAt *time.Time `json:"retiredAt,omitempty"`
	Until     *time.Time `json:"until,omitempty"`
}

func (m *Main) signingRecordPath() string { return filepath.Join(m.DataDir, "signing-keys.json") }

func (m *Main) keyPaths() (ed, rs string) {
	ed, rs = m.SigningKey, m.RSASigningKey
	if ed == "" {
		ed = filepath.Join(m.DataDir, "signing-ed25519.pem")
	}
	if rs == "" {
		rs = filepath.Join(m.DataDir, "signing-rsa.pem")
	}
	return ed, rs
}

func readSigningRecord(path string) (signingRecord, bool, error) {
	var rec signingRecord
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, false, fmt.Errorf("%s: %w", path, err)
	}
	return rec, true, nil
}

func publicPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// kids returns the kid of each active key by alg, from the JWKS.
func kids(k *licensing.SigningKeys) map[string]string {
	var doc struct{ Keys []struct{ Kid, Alg string } }
	json.Unmarshal(k.JWKS(), &doc)
	out := map[string]string{}
	for _, key := range doc.Keys {
		if out[key.Alg] == "" {
			out[key.Alg] = key.Kid
		}
	}
	return out
}

// checkSharedSigning refuses signing keys other than those of the other
// servers on the store, when the store keeps a record of them (the
// PostgreSQL store, which several servers share): the first server records
// its key ids, -rotate-signing-keys records this server's.
func (m *Main) checkSharedSigning(ctx context.Context, signing *licensing.SigningKeys) error {
	st, ok := m.store.(interface {
		SigningFingerprint(ctx context.Context, fingerprint string, replace bool) (string, error)
	})
	if !ok {
		return nil
	}
	kid := kids(signing)
	mine := licensing.AlgEdDSA + "=" + kid[licensing.AlgEdDSA] + " " + licensing.AlgRS256 + "=" + kid[licensing.AlgRS256]
	recorded, err := st.SigningFingerprint(ctx, mine, m.RotateSigningKeys)
	if err != nil {
		return fmt.Errorf("record the signing keys in the store: %w", err)
	}
	if recorded != mine {
		edPath, rsaPath := m.keyPaths()
		return fmt.Errorf("the signing keys of %s (%s) are not those the store records for the servers that share it (%s): "+
			"tokens this server signs would not verify with their public keys; copy %s, %s and %s from a running server's data directory, "+
			"or, to replace the keys of every server, start one with -rotate-signing-keys and copy its files to the others",
			m.DataDir, mine, recorded, edPath, rsaPath, m.signingRecordPath())
	}
	return nil
}

// signingKeys loads the Ed25519 and RSA signing keys. On a first start
// (create), missing key files are generated (mode 0600) and recorded in
// <data>/signing-keys.json; once recorded, a missing or changed key refuses
// the start unless -rotate-signing-keys is given, and a replaced key's
// public half stays published for -signing-key-overlap. Without create
// (the public-keys command) nothing is written and a missing file is an
// error.
func (m *Main) signingKeys(create bool) (*licensing.SigningKeys, error) {
	now := time.Now().UTC().Truncate(time.Second)
	recPath := m.signingRecordPath()
	rec, recorded, err := readSigningRecord(recPath)
	if err != nil {
		return nil, err
	}
	active := func(alg string) *recordedKey {
		for i := range rec.Keys {
			if rec.Keys[i].Alg == alg {
				return &rec.Keys[i]
			}
		}
		return nil
	}
	edPath, rsaPath := m.keyPaths()
	type slot struct {
		alg, path string
		key       crypto.Signer
		generate  bool // missing, and may be made
		generated bool // made by this start (else taken from another that made it first)
	}
	slots := []*slot{{alg: licensing.AlgEdDSA, path: edPath}, {alg: licensing.AlgRS256, path: rsaPath}}
	for _, s := range slots {
		if s.key, err = keyfile.Read(s.path); err != nil {
			return nil, err
		}
		if s.key != nil {
			continue
		}
		if !create {
			return nil, fmt.Errorf("no signing key at %s; start the server once to create it", s.path)
		}
		if prev := active(s.alg); prev != nil && !m.RotateSigningKeys {
			return nil, fmt.Errorf("signing key %s is missing, but %s records kid %s, with which tokens and signed answers may have been issued: restore the file, or start with -rotate-signing-keys to make a new key (the old public key stays published for -signing-key-overlap, %s)",
				s.path, recPath, prev.KID, m.SigningKeyOverlap)
		}
		if !recorded && m.storeHadData && !m.RotateSigningKeys {
			// The record is gone with the key (rm <data>/signing*), but the
			// store has keys: this is no first start, and answers were signed.
			return nil, fmt.Errorf("signing key %s is missing, and so is %s, but the store already holds keys: tokens and signed answers were issued with the lost key; restore both files, or start with -rotate-signing-keys to make a new key",
				s.path, recPath)
		}
		s.generate = true
	}
	for _, s := range slots {
		if s.generate {
			if s.key, s.generated, err = m.createKeyFile(s.alg, s.path); err != nil {
				return nil, err
			}
		}
	}
	ed, rk, err := keyfile.Pair(edPath, slots[0].key, rsaPath, slots[1].key)
	if err != nil {
		return nil, err
	}
	keys, err := licensing.NewSigningKeys(ed, rk)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	kid := kids(keys)

	next := signingRecord{}
	changed := false
	for _, s := range slots {
		prev := active(s.alg)
		if prev != nil && prev.KID == kid[s.alg] {
			next.Keys = append(next.Keys, *prev)
			continue
		}
		changed = true
		if prev != nil {
			if !m.RotateSigningKeys && create {
				return nil, fmt.Errorf("signing key %s (kid %s) is not the key %s records (kid %s), with which tokens and signed answers may have been issued: restore it, or start with -rotate-signing-keys to take the new key (the old public key stays published for -signing-key-overlap, %s)",
					s.path, kid[s.alg], recPath, prev.KID, m.SigningKeyOverlap)
			}
			until := now.Add(m.SigningKeyOverlap)
			retired := *prev
			retired.RetiredAt, retired.Until = &now, &until
			next.Retired = append(next.Retired, retired)
			m.logger.Warn("signing key rotated", "alg", s.alg, "old_kid", prev.KID, "new_kid", kid[s.alg],
				"old_key_published_until", until.Format(time.RFC3339))
		}
		pub, err := publicPEM(s.key.Public())
		if err != nil {
			return nil, err
		}
		next.Keys = append(next.Keys, recordedKey{KID: kid[s.alg], Alg: s.alg, PublicKey: pub, Since: now})
	}
	var retiredPubs []crypto.PublicKey
	candidates := next.Retired
	next.Retired = []recordedKey{}
	for _, r := range append(candidates, rec.Retired...) {
		if r.Until == nil || !r.Until.After(now) || containsKID(next.Retired, r.KID) {
			changed = changed || r.Until == nil || !r.Until.After(now)
			continue // the overlap is over
		}
		block, _ := pem.Decode([]byte(r.PublicKey))
		if block == nil {
			return nil, fmt.Errorf("%s: retired key %s: no PEM block", recPath, r.KID)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: retired key %s: %w", recPath, r.KID, err)
		}
		retiredPubs = append(retiredPubs, pub)
		next.Retired = append(next.Retired, r)
	}
	if keys, err = keys.WithRetired(retiredPubs...); err != nil {
		return nil, fmt.Errorf("%s: %w", recPath, err)
	}
	if !create || !changed {
		return keys, nil
	}
	for _, s := range slots {
		switch {
		case s.generated:
			m.logger.Info("generated a signing key", "file", s.path, "alg", s.alg, "kid", kid[s.alg])
		case s.generate:
			m.logger.Info("took the signing key another server created at the same time", "file", s.path, "alg", s.alg, "kid", kid[s.alg])
		}
	}
	b, _ := json.MarshalIndent(next, "", "  ")
	return keys, atomicfile.Write(recPath, append(b, '\n'))
}

// createKeyFile makes a key of alg and creates path with it, exclusively:
// when another process (a server with another data directory and the same
// -signing-key) created path first, its key is read and returned instead,
// so that every server sharing the file signs with one key. made reports
// whether the key is this call's.
func (m *Main) createKeyFile(alg, path string) (key crypto.Signer, made bool, err error) {
	if alg == licensing.AlgEdDSA {
		_, key, err = ed25519.GenerateKey(rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return nil, false, err
	}
	b, err := keyfile.Marshal(key)
	if err != nil {
		return nil, false, err
	}
	err = atomicfile.Create(path, b)
	if err == nil {
		return key, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, fmt.Errorf("create signing key %s: %w", path, err)
	}
	if key, err = keyfile.Read(path); err != nil {
		return nil, false, err
	}
	if key == nil { // created and removed again since: not a race to settle here
		return nil, false, fmt.Errorf("signing key %s appeared and disappeared while this server was creating it: is another process rotating it?", path)
	}
	return key, false, nil
}

func containsKID(keys []recordedKey, kid string) bool {
	for _, k := range keys {
		if k.KID == kid {
			return true
		}
	}
	return false
}
