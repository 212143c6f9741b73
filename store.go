package licensing

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
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
//
// Keys are held in a compact form (about 300 bytes a key with HMAC digests)
// so that stores which replay their state into a MemoryStore stay small.
// Key.ID must be a canonical lower-case UUID.
type MemoryStore struct {
	mu       sync.RWMutex
	byID     map[uuid.UUID]*memKey
	byLookup map[string]*memKey
	byOrg    map[string][]*memKey
	orgNames map[string]string // interned organization ids
}

// memKey is a Key without repeated strings or 24-byte times.
type memKey struct {
	id                                     uuid.UUID
	org, lookup, digest, masked            string
	instanceName, instanceURL              string
	created, activated, validated, revoked int64 // UnixNano; 0 is the zero time
	active                                 bool
	metrics                                map[string]float64
	violations                             []string
}

var _ Store = (*MemoryStore)(nil)

// ErrInvalidKeyID is returned by MemoryStore for a Key.ID that is not a
// canonical lower-case UUID.
var ErrInvalidKeyID = &Error{Code: CodeInvalid, Message: "key id must be a lower-case UUID"}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byID: map[uuid.UUID]*memKey{}, byLookup: map[string]*memKey{},
		byOrg: map[string][]*memKey{}, orgNames: map[string]string{}}
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func parseKeyID(id string) (uuid.UUID, bool) {
	if len(id) != 36 {
		return uuid.UUID{}, false
	}
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return uuid.UUID{}, false
	}
	return u, true
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

// Load adds a key as it is, with every field, for stores that replay their
// state into a MemoryStore. It fails like CreateKey does.
func (m *MemoryStore) Load(k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.insertLocked(k)
}

func (m *MemoryStore) insertLocked(k Key) error {
	id, ok := parseKeyID(k.ID)
	if !ok {
		return ErrInvalidKeyID
	}
	if _, ok := m.byID[id]; ok {
		return ErrDuplicateKey
	}
	if _, ok := m.byLookup[k.LookupValue]; ok {
		return ErrDuplicateKey
	}
	org, ok := m.orgNames[k.OrganizationID]
	if !ok {
		org = k.OrganizationID
		m.orgNames[org] = org
	}
	p := &memKey{
		id: id, org: org, lookup: k.LookupValue, digest: k.Digest, masked: k.MaskedKey,
		instanceName: k.InstanceName, instanceURL: k.InstanceURL,
		created: nanos(k.CreatedAt), activated: nanos(k.ActivatedAt),
		validated: nanos(k.LastValidatedAt), revoked: nanos(k.RevokedAt),
		active: k.Active, metrics: cloneMap(k.LastMetrics), violations: cloneSlice(k.LastViolations),
	}
	if p.digest == p.lookup {
		p.digest = p.lookup // one string for both (HMACHasher)
	}
	m.byID[id] = p
	m.byLookup[p.lookup] = p
	m.byOrg[org] = append(m.byOrg[org], p)
	return nil
}

func (p *memKey) key() Key {
	return Key{
		ID: p.id.String(), OrganizationID: p.org, LookupValue: p.lookup, Digest: p.digest,
		MaskedKey: p.masked, InstanceName: p.instanceName, InstanceURL: p.instanceURL, Active: p.active,
		CreatedAt: fromNanos(p.created), ActivatedAt: fromNanos(p.activated),
		LastValidatedAt: fromNanos(p.validated), RevokedAt: fromNanos(p.revoked),
		LastMetrics: cloneMap(p.metrics), LastViolations: cloneSlice(p.violations),
	}
}

// KeyByID implements Store.
func (m *MemoryStore) KeyByID(ctx context.Context, id string) (Key, error) {
	u, ok := parseKeyID(id)
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if p, ok := m.byID[u]; ok {
		return p.key(), nil
	}
	return Key{}, ErrKeyNotFound
}

// KeyByLookup implements Store.
func (m *MemoryStore) KeyByLookup(ctx context.Context, lookup string) (Key, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if p, ok := m.byLookup[lookup]; ok {
		return p.key(), nil
	}
	return Key{}, ErrKeyNotFound
}

// ListKeys implements Store.
func (m *MemoryStore) ListKeys(ctx context.Context, orgID string) ([]Key, error) {
	m.mu.RLock()
	keys := make([]Key, 0, len(m.byOrg[orgID]))
	for _, p := range m.byOrg[orgID] {
		keys = append(keys, p.key())
	}
	m.mu.RUnlock()
	SortKeys(keys)
	return keys, nil
}

// RevokeKey implements Store.
func (m *MemoryStore) RevokeKey(ctx context.Context, id string, at time.Time) (Key, error) {
	u, ok := parseKeyID(id)
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.byID[u]
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	if p.active {
		p.active = false
		p.revoked = nanos(at)
	}
	return p.key(), nil
}

// RecordValidations implements Store.
func (m *MemoryStore) RecordValidations(ctx context.Context, recs []ValidationRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		u, ok := parseKeyID(r.KeyID)
		if !ok {
			continue
		}
		p, ok := m.byID[u]
		if !ok {
			continue
		}
		k := Key{ActivatedAt: fromNanos(p.activated), LastValidatedAt: fromNanos(p.validated),
			InstanceName: p.instanceName, InstanceURL: p.instanceURL}
		r.Metrics = cloneMap(r.Metrics)
		r.Violations = cloneSlice(r.Violations)
		k.ApplyValidation(r)
		p.activated, p.validated = nanos(k.ActivatedAt), nanos(k.LastValidatedAt)
		p.instanceName, p.instanceURL = k.InstanceName, k.InstanceURL
		if r.Metrics != nil {
			p.metrics = r.Metrics
		}
		if r.Violations != nil {
			p.violations = r.Violations
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

// Each calls fn with a copy of every key, in no order, until fn returns
// false. Writers wait until it returns.
func (m *MemoryStore) Each(fn func(Key) bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, p := range m.byID {
		if !fn(p.key()) {
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

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}
