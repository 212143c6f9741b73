package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/atomicfile"
)

// issuedFile is <data>/keys-issued.json: the data directory's record that
// this deployment issued keys, and one key it issued. A start where the
// record exists but the store is missing, empty or without that key (a
// volume that did not mount, a new database) is refused: every issued key
// would answer 401 and new keys would go into the wrong store.
const issuedFile = "keys-issued.json"

// issuedRecord is what issuedFile holds: the first key the data directory
// saw issued (or found in the store, for a directory from before the
// record). Keys are never deleted from a store, so it stays there.
type issuedRecord struct {
	KeyID          string    `json:"keyId"`
	OrganizationID string    `json:"organizationId"`
	Since          time.Time `json:"since"`
}

func (m *Main) issuedPath() string { return filepath.Join(m.DataDir, issuedFile) }

// maxIssuedSize bounds what is read of issuedFile; the record the server
// writes is under 200 bytes.
const maxIssuedSize = 4 << 10

// readIssued returns the record, or nil when the data directory has none.
// A file that is not a record this server wrote (not a regular file,
// larger than maxIssuedSize, not the record) is refused without being read
// whole.
func (m *Main) readIssued() (*issuedRecord, error) {
	path := m.issuedPath()
	damaged := func(what string) error {
		return fmt.Errorf("%s: %s (the record that this data directory issued keys: restore it, or remove it to start over with an empty store)", path, what)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, damaged("is a directory")
		}
		return nil, damaged("is not a regular file (mode " + fi.Mode().String() + ")")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxIssuedSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxIssuedSize {
		return nil, damaged(fmt.Sprintf("is larger than %d bytes: not the record this server writes", maxIssuedSize))
	}
	var rec issuedRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, damaged(err.Error())
	}
	if !licensing.ValidKeyID(rec.KeyID) {
		return nil, damaged("keyId: not a key id")
	}
	return &rec, nil
}

// writeIssued saves the record durably (file and directory synced).
func (m *Main) writeIssued(rec issuedRecord) error {
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := atomicfile.Write(m.issuedPath(), append(b, '\n')); err != nil {
		return fmt.Errorf("record that keys were issued in %s: %w", m.issuedPath(), err)
	}
	return nil
}

// lostStore is the refusal for a store that lacks what the record says
// was issued. what says which store and what is missing.
func (m *Main) lostStore(rec *issuedRecord, what string) error {
	return fmt.Errorf("%s records that this deployment issued keys (key %s of organization %s, %s), but %s: every issued key would answer 401. Mount or restore the store (licensing-server restore, or the database's backup); to start over with an empty store on purpose, remove %s",
		m.issuedPath(), rec.KeyID, rec.OrganizationID, rec.Since.Format(time.RFC3339), what, m.issuedPath())
}

// checkStoreDir refuses, before anything opens it, a file store directory
// that is missing or empty while the record says keys were issued: opening
// it would make a new, empty store there.
func (m *Main) checkStoreDir(rec *issuedRecord, dir string) error {
	if rec == nil || m.StoreKind != "file" {
		return nil
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return m.lostStore(rec, "the store "+dir+" is not a directory (mode "+fi.Mode().String()+")")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return m.lostStore(rec, "the store directory "+dir+" is missing")
	case err != nil:
		return fmt.Errorf("store directory: %w", err)
	case len(entries) == 0:
		return m.lostStore(rec, "the store directory "+dir+" is empty")
	}
	return nil
}

// checkIssued refuses an open store that does not hold the key the record
// names. The memory store, which always starts empty, is exempt.
func (m *Main) checkIssued(ctx context.Context, rec *issuedRecord, store licensing.Store) error {
	if rec == nil || m.StoreKind == "memory" {
		return nil
	}
	_, err := store.KeyByID(ctx, rec.KeyID)
	if errors.Is(err, licensing.ErrKeyNotFound) {
		where := "the store (-store " + m.StoreKind + ")"
		if m.StoreKind == "file" {
			where = "the store " + filepath.Join(m.DataDir, "store")
		}
		return m.lostStore(rec, where+" does not hold that key")
	}
	if err != nil {
		return fmt.Errorf("look for key %s, which %s records: %w", rec.KeyID, m.issuedPath(), err)
	}
	return nil
}

// issuedStore writes the record once, after the first key it creates is
// stored and before that key is answered, when the data directory has no
// record yet. A failure to write it fails the create (the key, stored but
// never shown, can be revoked from the list).
type issuedStore struct {
	licensing.Store
	m      *Main
	mu     sync.Mutex
	marked atomic.Bool
}

// recordIssued wraps store so that the first key created writes the
// record; a memory store, or a directory that has the record, is left as it
// is.
func (m *Main) recordIssued(store licensing.Store, has bool) licensing.Store {
	if has || m.StoreKind == "memory" {
		return store
	}
	return &issuedStore{Store: store, m: m}
}

func (s *issuedStore) CreateKey(ctx context.Context, k licensing.Key) error {
	if err := s.Store.CreateKey(ctx, k); err != nil {
		return err
	}
	if s.marked.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marked.Load() {
		return nil
	}
	if err := s.m.writeIssued(issuedRecord{KeyID: k.ID, OrganizationID: k.OrganizationID, Since: k.CreatedAt.UTC()}); err != nil {
		return err
	}
	s.marked.Store(true)
	return nil
}
