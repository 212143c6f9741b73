package licensing

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Store keeps license keys. Implementations must be safe for concurrent use
// and return copies: a caller may modify what it gets without affecting the
// store. Every method honours ctx where it can block.
//
// Contract for all stores (the conformance suite in internal/storetest checks
// it):
type Store interface {
	// CreateKey stores a new key. It returns ErrDuplicateKey (errors.Is)
	// when a key with the same ID or LookupValue exists, and stores nothing
	// then. When it returns nil the key survives a crash of the process, to
	// the degree the store promises (the memory store: not at all).
	CreateKey(ctx context.Context, k Key) error
	// KeyByID returns the key with id, or ErrKeyNotFound.
	KeyByID(ctx context.Context, id string) (Key, error)
	// KeyByLookup returns the key with the lookup value, or ErrKeyNotFound.
	KeyByLookup(ctx context.Context, lookup string) (Key, error)
	// ListKeys returns the organization's keys, revoked ones included,
	// newest first (CreatedAt descending, then ID descending). An
	// organization without keys gives an empty, non-nil slice.
	ListKeys(ctx context.Context, orgID string) ([]Key, error)
	// RevokeKey sets Active false and RevokedAt to at, durably, and returns
	// the updated key. Revoking a revoked key changes nothing and returns
	// it with its first RevokedAt. A missing key gives ErrKeyNotFound.
	RevokeKey(ctx context.Context, id string, at time.Time) (Key, error)
	// RecordValidations applies each record to its key as
	// Key.ApplyValidation does, in one write for the whole batch. Records
	// of unknown keys are skipped.
	RecordValidations(ctx context.Context, recs []ValidationRecord) error
}

// MemoryStore is a Store that keeps everything in memory: fast, and gone
// when the process ends. The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu       sync.RWMutex
	byID     map[string]*Key
	byLookup map[string]*Key
	byOrg    map[string][]*Key
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byID: map[string]*Key{}, byLookup: map[string]*Key{}, byOrg: map[string][]*Key{}}
}

// CreateKey implements Store.
func (m *MemoryStore) CreateKey(ctx context.Context, k Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.insertLocked(k)
}

// Load adds keys as they are, for stores that replay their state into a
// MemoryStore. It returns ErrDuplicateKey on a duplicate id or lookup value.
func (m *MemoryStore) Load(k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.insertLocked(k)
}

func (m *MemoryStore) insertLocked(k Key) error {
	if _, ok := m.byID[k.ID]; ok {
		return ErrDuplicateKey
	}
	if _, ok := m.byLookup[k.LookupValue]; ok {
		return ErrDuplicateKey
	}
	if k.Digest == k.LookupValue {
		k.Digest = k.LookupValue // share one string (HMACHasher)
	}
	p := &k
	p.LastMetrics = cloneMap(k.LastMetrics)
	p.LastViolations = cloneSlice(k.LastViolations)
	m.byID[k.ID] = p
	m.byLookup[k.LookupValue] = p
	m.byOrg[k.OrganizationID] = append(m.byOrg[k.OrganizationID], p)
	return nil
}

// KeyByID implements Store.
func (m *MemoryStore) KeyByID(ctx context.Context, id string) (Key, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if p, ok := m.byID[id]; ok {
		return copyKey(p), nil
	}
	return Key{}, ErrKeyNotFound
}

// KeyByLookup implements Store.
func (m *MemoryStore) KeyByLookup(ctx context.Context, lookup string) (Key, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if p, ok := m.byLookup[lookup]; ok {
		return copyKey(p), nil
	}
	return Key{}, ErrKeyNotFound
}

// ListKeys implements Store.
func (m *MemoryStore) ListKeys(ctx context.Context, orgID string) ([]Key, error) {
	m.mu.RLock()
	keys := make([]Key, 0, len(m.byOrg[orgID]))
	for _, p := range m.byOrg[orgID] {
		keys = append(keys, copyKey(p))
	}
	m.mu.RUnlock()
	SortKeys(keys)
	return keys, nil
}

// RevokeKey implements Store.
func (m *MemoryStore) RevokeKey(ctx context.Context, id string, at time.Time) (Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.byID[id]
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	if p.Active {
		p.Active = false
		p.RevokedAt = at
	}
	return copyKey(p), nil
}

// RecordValidations implements Store.
func (m *MemoryStore) RecordValidations(ctx context.Context, recs []ValidationRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		if p, ok := m.byID[r.KeyID]; ok {
			r.Metrics = cloneMap(r.Metrics)
			r.Violations = cloneSlice(r.Violations)
			p.ApplyValidation(r)
		}
	}
	return nil
}

// Len returns the number of keys stored.
func (m *MemoryStore) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byID)
}

// Each calls fn with a copy of every key, in no order, until fn returns false.
func (m *MemoryStore) Each(fn func(Key) bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, p := range m.byID {
		if !fn(copyKey(p)) {
			return
		}
	}
}

// SortKeys orders keys newest first: CreatedAt descending, then ID descending.
func SortKeys(keys []Key) {
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].CreatedAt.Equal(keys[j].CreatedAt) {
			return keys[i].CreatedAt.After(keys[j].CreatedAt)
		}
		return keys[i].ID > keys[j].ID
	})
}

func copyKey(p *Key) Key {
	k := *p
	k.LastMetrics = cloneMap(p.LastMetrics)
	k.LastViolations = cloneSlice(p.LastViolations)
	return k
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}
