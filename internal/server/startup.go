package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
	"github.com/licensekit/licensing/internal/atomicfile"
)

// A start, in order: take the data directory's lock; read the configuration
// (or the demo one, kept in memory); load the pepper (a missing file gives a
// fresh one, which is refused if the store already holds keys and is
// otherwise saved before any store records it); open the store and have it
// confirm the pepper; load or create the signing keys (a lost key is refused
// when the store holds keys). Nothing is
// written before the lock is held, and nothing that depends on a failed step
// is written after it. The demo owner is saved and its token printed only
// once the server listens (announce). Where <data>/keys-issued.json records
// that keys were issued, a store that is missing, empty or without the key
// it names is refused before anything is written (issued.go).

// started is what a start prepared for Run.
type started struct {
	cfg      *FileConfig
	issued   bool // <data>/keys-issued.json exists (or was written by this start)
	pepper   []byte
	signing  *licensing.SigningKeys
	health   func() error // the store's health; nil is healthy
	announce func() error // called once listening: saves a new demo owner and prints its token
}

// start prepares a run. On error nothing is left open but the lock, which
// Run releases.
func (m *Main) start(ctx context.Context) (*started, error) {
	if err := m.lockDataDir(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(m.DataDir, restoreMarker)); err == nil {
		return nil, fmt.Errorf("data directory %s holds an unfinished restore (%s): empty it and run restore again", m.DataDir, restoreMarker)
	}
	m.removeLeftovers()
	issued, err := m.readIssued()
	if err != nil {
		return nil, err
	}
	storeDir := filepath.Join(m.DataDir, "store")
	if err := m.checkStoreDir(issued, storeDir); err != nil {
		return nil, err
	}
	cfg, announce, err := m.loadConfig()
	if err != nil {
		return nil, err
	}
	if err := m.dir.Swap(cfg); err != nil {
		return nil, err
	}
	pep, err := m.loadPepper()
	if err != nil {
		return nil, err
	}
	if pep.fresh {
		// The pepper file is missing: a first start, or a lost pepper. A
		// store that holds keys is refused before anything records the
		// new pepper; otherwise the pepper is saved before any store
		// records its fingerprint, so a start killed after that point
		// leaves a pepper file that matches.
		if err := m.checkFreshPepper(ctx, &pep, storeDir, cfg, issued); err != nil {
			return nil, err
		}
	}
	// Where keys were issued, the file store is opened without the
	// pepper's fingerprint and given it only once it is known to hold the
	// recorded key: a start refused over another deployment's store (which
	// holds no key, so would adopt the fingerprint) writes nothing to it.
	fp := licensing.PepperFingerprint(pep.value)
	openFP := fp
	if issued != nil && m.StoreKind == "file" {
		openFP = ""
	}
	health, err := m.openStore(ctx, storeDir, openFP)
	if errors.Is(err, licensing.ErrPepperMismatch) {
		return nil, pep.mismatch()
	}
	if err != nil {
		return nil, err
	}
	signing, err := func() (*licensing.SigningKeys, error) {
		if err := m.checkIssued(ctx, issued, m.store); err != nil {
			return nil, err
		}
		if fst, ok := m.store.(*filestore.Store); ok && openFP != fp {
			if err := fst.CheckPepper(ctx, fp); errors.Is(err, licensing.ErrPepperMismatch) {
				return nil, pep.mismatch()
			} else if err != nil {
				return nil, fmt.Errorf("check the pepper: %w", err)
			}
		}
		if err := m.checkPepper(ctx, &pep, m.store); err != nil {
			return nil, err
		}
		held, err := holdsKeys(ctx, m.store, cfg)
		if err != nil {
			return nil, err
		}
		m.storeHadData = held != nil
		if held != nil && issued == nil && m.StoreKind != "memory" {
			// A directory from before the record, or a start killed
			// between a first key and its record: the store says keys
			// were issued.
			issued = &issuedRecord{KeyID: held.ID, OrganizationID: held.OrganizationID, Since: held.CreatedAt.UTC()}
			if err := m.writeIssued(*issued); err != nil {
				return nil, err
			}
		}
		signing, err := m.signingKeys(true)
		if err != nil {
			return nil, err
		}
		return signing, m.checkSharedSigning(ctx, signing)
	}()
	if err != nil {
		if m.closer != nil {
			m.closer.Close()
			m.closer = nil
		}
		return nil, err
	}
	kid := kids(signing)
	m.logger.Info("tokens", "issuer", m.policy(cfg).Issuer, "default_alg", licensing.AlgRS256,
		"rs256_kid", kid[licensing.AlgRS256], "eddsa_kid", kid[licensing.AlgEdDSA])
	return &started{cfg: cfg, issued: issued != nil, pepper: pep.value, signing: signing, health: health, announce: announce}, nil
}

// checkFreshPepper refuses a fresh pepper (its file is missing) when the
// store already holds keys, or lacks the key the data directory records as
// issued, then saves it. The store is opened here without recording the
// pepper, and closed again unless it is the memory store.
func (m *Main) checkFreshPepper(ctx context.Context, pep *pepper, storeDir string, cfg *FileConfig, issued *issuedRecord) error {
	if m.StoreKind != "memory" {
		if _, err := m.openStore(ctx, storeDir, ""); err != nil {
			return err
		}
		err := m.checkIssued(ctx, issued, m.store)
		var held *licensing.Key
		if err == nil {
			held, err = holdsKeys(ctx, m.store, cfg)
		}
		if m.closer != nil {
			m.closer.Close()
		}
		m.store, m.closer = nil, nil
		if err != nil {
			return err
		}
		if held != nil {
			return pep.mismatch() // never a new pepper over issued keys
		}
	}
	return pep.save()
}

// holdsKeys returns a key of an organization of cfg that store holds, or
// nil: a store with keys has issued what a lost pepper or signing key
// would break.
func holdsKeys(ctx context.Context, store licensing.Store, cfg *FileConfig) (*licensing.Key, error) {
	for _, o := range cfg.Organizations {
		keys, err := store.ListKeys(ctx, o.ID, licensing.KeyCursor{}, 1)
		if err != nil {
			return nil, fmt.Errorf("look for keys in the store: %w", err)
		}
		if len(keys) > 0 {
			return &keys[0], nil
		}
	}
	return nil, nil
}

// lockDataDir creates the data directory (mode 0700), checks that no other
// user owns or may write it, takes an exclusive flock on <data>/.lock, held
// until unlock (a second server on the same directory fails here, before it
// reads or writes anything else), and checks the files the start will read
// (datadir.go).
func (m *Main) lockDataDir() error {
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// Owned by the server's user, and made private if it is open to others
	// (made by mkdir or a volume): it holds the pepper, the signing keys
	// and the admin socket (datadir.go).
	if err := m.checkDataDir(); err != nil {
		return err
	}
	path := filepath.Join(m.DataDir, ".lock")
	// Never through a symbolic link: opening one (planted while the
	// directory was open to others) would create the file it names.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("%s is a symbolic link: the lock is a plain file the server makes; check who made the link, then remove it", path)
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("data directory %s is in use: another licensing-server holds the lock %s", m.DataDir, path)
		}
		return fmt.Errorf("lock %s: %w", path, err)
	}
	m.lock = f
	return m.checkStateFiles()
}

// removeLeftovers removes what a server killed half-way through left in the
// data directory: the temporary file of a backup being served (.backup-*),
// of a secret being saved (.tmp-*) and the admin socket's (.admin-*). The lock is held: nobody else is
// writing them.
func (m *Main) removeLeftovers() {
	for _, pattern := range []string{".backup-*", ".tmp-*", ".admin-*"} {
		names, _ := filepath.Glob(filepath.Join(m.DataDir, pattern))
		for _, name := range names {
			if err := os.RemoveAll(name); err == nil {
				m.logger.Info("removed a leftover temporary file", "file", name)
			}
		}
	}
}

// unlock releases the data directory's lock.
func (m *Main) unlock() {
	if m.lock != nil {
		m.lock.Close()
		m.lock = nil
	}
}

// openStore opens the -store kind into m.store and m.closer and returns its
// health check. The file store checks the pepper's fingerprint as it opens.
func (m *Main) openStore(ctx context.Context, storeDir, fingerprint string) (func() error, error) {
	switch m.StoreKind {
	case "memory":
		m.store = licensing.NewMemoryStore()
		return func() error { return nil }, nil
	case "file":
		fst, err := filestore.Open(storeDir, filestore.Options{Logger: m.logger, PepperFingerprint: fingerprint})
		if err != nil {
			return nil, err
		}
		m.store, m.closer = fst, fst
		return fst.Err, nil
	}
	open, ok := m.Stores[m.StoreKind]
	if !ok {
		return nil, fmt.Errorf("-store %q: want %s", m.StoreKind, m.want("store"))
	}
	var err error
	if m.store, m.closer, err = open(ctx); err != nil {
		return nil, err
	}
	return func() error { return nil }, nil
}

// policy is the configuration's policy with -issuer applied.
func (m *Main) policy(c *FileConfig) licensing.Policy {
	p := c.policy()
	if m.Issuer != "" {
		p.Issuer = m.Issuer
	}
	return p
}

// loadConfig reads -config, or the demo configuration. announce is to be
// called once the server listens.
func (m *Main) loadConfig() (cfg *FileConfig, announce func() error, err error) {
	if m.ConfigPath != "" {
		cfg, err = LoadConfig(m.ConfigPath)
		if err == nil {
			if oerr := cfg.checkOwners(); oerr != nil {
				err = fmt.Errorf("config %s: %w", m.ConfigPath, oerr)
			}
		}
		return cfg, func() error { return nil }, err
	}
	return m.demoConfig()
}

// demo is what the first start without a configuration file keeps.
type demo struct {
	OrganizationID string `json:"organizationId"`
	OwnerID        string `json:"ownerId"`
	TokenSHA256    string `json:"tokenSha256"`
}

// check refuses a demo.json that the server did not write, naming the
// field, so that the error points at the file rather than at a
// configuration the operator never wrote.
func (d demo) check() error {
	switch {
	case d.OrganizationID == "":
		return errors.New("organizationId: missing")
	case d.OwnerID == "":
		return errors.New("ownerId: missing")
	case len(d.TokenSHA256) != hex.EncodedLen(sha256.Size):
		return errors.New("tokenSha256: must be 64 hex characters (the SHA-256 of the owner token)")
	}
	if _, err := hex.DecodeString(d.TokenSHA256); err != nil {
		return errors.New("tokenSha256: must be 64 hex characters (the SHA-256 of the owner token)")
	}
	return nil
}

// demoConfig returns the demo organization. The first time, its owner's
// token is made in memory; announce saves demo.json and prints the token,
// so a start that fails before listening leaves the next start to do it.
func (m *Main) demoConfig() (*FileConfig, func() error, error) {
	path := filepath.Join(m.DataDir, "demo.json")
	var d demo
	announce := func() error { return nil }
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := d.check(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		token, digest, err := newOwnerToken()
		if err != nil {
			return nil, nil, err
		}
		d = demo{OrganizationID: "org-demo", OwnerID: "owner", TokenSHA256: digest}
		announce = func() error {
			b, _ := json.MarshalIndent(d, "", "  ")
			if err := atomicfile.Write(path, append(b, '\n')); err != nil {
				return err
			}
			_, err := fmt.Fprintf(m.Stderr, "owner token: %s\n", token)
			return err
		}
	default:
		return nil, nil, err
	}
	return &FileConfig{
		Issuer:          DefaultIssuer,
		RequiredFeature: "selfHostingLicense",
		Plans: map[string]map[string]any{"business": {
			"selfHostingLicense": true, "maxCompanies": json.Number("0"), "maxUsersPerOrg": json.Number("0"),
		}},
		Organizations: []OrgConfig{{ID: d.OrganizationID, Name: "Demo Organization", OwnerID: d.OwnerID,
			Plan: "business", Active: true}},
		Tokens: []TokenConfig{{SHA256: d.TokenSHA256, UserID: d.OwnerID}},
	}, announce, nil
}
