package licensing

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// MemoryStore is a Store that keeps everything in memory: fast, and gone
// when the process ends. The zero value is not usable; call NewMemoryStore.
//
// Keys are held in a compact form (about 300 bytes a key with HMAC digests)
// so that stores which replay their state into a MemoryStore stay small.
// Key.ID must be a canonical lower-case UUID.
type MemoryStore struct {
	mu       sync.RWMutex
	keys     memKeys              // the keys (memkey.go), under mu
	byID     map[uuid.UUID]uint32 // key id -> number in keys
	byLookup lookupTable          // lookup value -> number in keys
	byOrg    orgLists             // organization (memKeys.orgs) -> keys, oldest first

	imu  sync.Mutex // guards inst
	inst memInstances

	expiring map[uint32]struct{} // keys with an expiry (ExpiringKeys), under mu
	events   memEvents           // the event log (memevents.go), under its own lock
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byID: map[uuid.UUID]uint32{}, byLookup: newLookupTable(0),
		inst: memInstances{byKey: map[uuid.UUID][]Instance{}}, expiring: map[uint32]struct{}{}}
}

// reserve makes room for n keys in an empty store, so that loading them does
// not grow its indexes step by step. It does nothing to a store with keys.
func (m *MemoryStore) reserve(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.byID) == 0 && n > 0 {
		m.byID = make(map[uuid.UUID]uint32, n)
		m.byLookup.grow(n)
	}
}

// CreateKey implements Store.
func (m *MemoryStore) CreateKey(ctx context.Context, k Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.insertLocked(k)
	return err
}

// load adds keys as they are, with every field, for stores that rebuild
// their state from trusted data (a snapshot, a log). It is faster than
// CreateKey: it does not look before it inserts, and it fills the indexes in
// parallel. On an invalid id, or a duplicate id or lookup value, it returns
// an error (ErrInvalidKeyID, ErrDuplicateKey) and leaves the store's contents
// unspecified: the caller must then discard the store.
func (m *MemoryStore) load(keys ...Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := make([]*memKey, len(keys))
	for i, k := range keys {
		id, ok := parseKeyID(k.ID)
		if !ok {
			return ErrInvalidKeyID
		}
		ps[i] = m.keys.add(id, k)
	}
	n := len(m.byID)
	byLookup := func() {
		for _, p := range ps {
			l := m.keys.lookup(p)
			ix := indexOf(l)
			m.byLookup.put(&m.keys, &ix, l, p)
		}
	}
	done := make(chan struct{})
	if len(ps) >= 256 { // worth a second core
		go func() { defer close(done); byLookup() }()
	} else {
		byLookup()
		close(done)
	}
	m.addAllToOrgs(ps)
	for _, p := range ps {
		m.byID[p.id] = p.self
		m.trackExpiryLocked(p)
	}
	<-done
	if len(m.byID) != n+len(ps) || m.byLookup.n != n+len(ps) {
		return ErrDuplicateKey
	}
	return nil
}

// insertLocked checks and adds k, and returns its record.
func (m *MemoryStore) insertLocked(k Key) (*memKey, error) {
	id, ok := parseKeyID(k.ID)
	if !ok {
		return nil, ErrInvalidKeyID
	}
	if !ValidExpiry(k.ExpiresAt) {
		return nil, ErrInvalidExpiry
	}
	if k.MaxInstances < 0 || k.MaxInstances > MaxInstancesLimit {
		return nil, ErrInvalidMaxInstances
	}
	if _, ok := m.byID[id]; ok {
		return nil, ErrDuplicateKey
	}
	ix := indexOf(k.LookupValue)
	if m.byLookup.get(&m.keys, &ix, k.LookupValue) != nil {
		return nil, ErrDuplicateKey
	}
	p := m.keys.add(id, k)
	m.byID[id] = p.self
	m.byLookup.put(&m.keys, &ix, k.LookupValue, p)
	m.addToOrg(p)
	m.trackExpiryLocked(p)
	return p, nil
}

// addToOrg inserts p into its organization's list, which is kept oldest
// first (the reverse of list order) so that the usual insert, a key newer
// than all others, is an append.
func (m *MemoryStore) addToOrg(p *memKey) {
	list := m.byOrg.extend(p.org, 1)
	i := len(list) - 1
	if i > 0 && m.listsBefore(p.self, list[i-1]) {
		i, _ = slices.BinarySearchFunc(list[:i], p.self, m.compareOldestFirst)
		copy(list[i+1:], list[i:])
	}
	list[i] = p.self
}

// addAllToOrgs inserts ps into their organizations' lists: appended, then
// each list that got keys out of order sorted once, so that loading keys in
// any order (a snapshot is written in map order) costs O(n log n), not the
// O(n²) of inserting them one by one.
func (m *MemoryStore) addAllToOrgs(ps []*memKey) {
	starts := map[uint32]int{} // where each touched list's new keys start
	for _, p := range ps {
		if _, ok := starts[p.org]; !ok {
			starts[p.org] = len(m.byOrg.list(p.org))
		}
		list := m.byOrg.extend(p.org, 1)
		list[len(list)-1] = p.self
	}
	for org, start := range starts {
		list := m.byOrg.list(org)
		added := list[start:]
		if !slices.IsSortedFunc(added, m.compareOldestFirst) {
			slices.SortFunc(added, m.compareOldestFirst)
		}
		if start == 0 || m.listsBefore(list[start-1], added[0]) {
			continue
		}
		// Merge the sorted new keys into the part of the old list they reach.
		i, _ := slices.BinarySearchFunc(list[:start], added[0], m.compareOldestFirst)
		old := slices.Clone(list[i:start])
		added = slices.Clone(added)
		out := list[i:i]
		for len(old) > 0 && len(added) > 0 {
			if m.listsBefore(added[0], old[0]) {
				out, added = append(out, added[0]), added[1:]
			} else {
				out, old = append(out, old[0]), old[1:]
			}
		}
		out = append(append(out, old...), added...)
	}
}

func compareOldestFirst(a, b *memKey) int {
	if a.created != b.created {
		return cmp.Compare(a.created, b.created)
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// compareOldestFirst orders keys a and b (numbers in m.keys) as the
// organizations' lists hold them.
func (m *MemoryStore) compareOldestFirst(a, b uint32) int {
	return compareOldestFirst(m.keys.at(a), m.keys.at(b))
}

// listsBefore reports whether key a is older than key b in list order.
func (m *MemoryStore) listsBefore(a, b uint32) bool { return m.compareOldestFirst(a, b) < 0 }

// KeyByID implements Store.
func (m *MemoryStore) KeyByID(ctx context.Context, id string) (Key, error) {
	u, ok := parseKeyID(id)
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if i, ok := m.byID[u]; ok {
		return m.keys.key(m.keys.at(i)), nil
	}
	return Key{}, ErrKeyNotFound
}

// KeyByLookup implements Store.
func (m *MemoryStore) KeyByLookup(ctx context.Context, lookup string) (Key, error) {
	ix := indexOf(lookup)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if p := m.byLookup.get(&m.keys, &ix, lookup); p != nil {
		return m.keys.key(p), nil
	}
	return Key{}, ErrKeyNotFound
}

// keyForValidation is KeyByLookup for the Service's validations, by the
// index of the lookup value (indexOf; lookup is the value itself, needed
// only when ix is hashed). The key's LastMetrics and LastViolations are the store's own
// values, which it never changes in place (a record replaces them), so the
// caller must only read them or hand them back in a ValidationRecord. It
// returns the store's record of the key too, for ValidationRecord.key.
func (m *MemoryStore) keyForValidation(ix lookupIndex, lookup string) (Key, *memKey) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p := m.byLookup.get(&m.keys, &ix, lookup)
	if p == nil {
		return Key{}, nil
	}
	k := m.keys.bareKey(p)
	if p.extra != 0 {
		k.LastMetrics = m.keys.extras[p.extra-1].metrics
	}
	k.LastViolations = m.keys.violations(p)
	return k, p
}

// ListKeys implements Store. A page costs a binary search and the keys it
// returns, whatever the organization's size.
func (m *MemoryStore) ListKeys(ctx context.Context, orgID string, after KeyCursor, limit int) ([]Key, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	org, ok := m.keys.orgIx[orgID]
	if !ok {
		return []Key{}, nil
	}
	list := m.byOrg.list(org)
	end := len(list) // list[:end] comes after the cursor
	if !after.IsZero() {
		cur := &memKey{created: nanos(after.CreatedAt)}
		cur.id, _ = uuid.Parse(after.ID) // an id that is no UUID sorts as the nil UUID
		end, _ = slices.BinarySearchFunc(list, cur, func(i uint32, cur *memKey) int {
			return compareOldestFirst(m.keys.at(i), cur)
		})
	}
	n := end
	if limit > 0 && limit < n {
		n = limit
	}
	keys := make([]Key, 0, n)
	for i := end - 1; i >= end-n; i-- {
		keys = append(keys, m.keys.key(m.keys.at(list[i])))
	}
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
	i, ok := m.byID[u]
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	p := m.keys.at(i)
	if p.active {
		p.active = false
		p.revoked = nanos(at)
	}
	return m.keys.key(p), nil
}

// recordChunk is how many records RecordValidations applies per hold of the
// write lock, so lookups never wait for more than a chunk.
const recordChunk = 256

// RecordValidations implements Store. A batch is applied in chunks of
// recordChunk records, each under the write lock for a short time; a reader
// may see part of a batch applied, and every record either whole or not.
// Metrics and violations equal to the key's current ones are not copied
// again.
func (m *MemoryStore) RecordValidations(ctx context.Context, recs []ValidationRecord) error {
	type prepared struct {
		p *memKey // nil: found by id under the lock
		r *ValidationRecord
	}
	var chunk [recordChunk]prepared
	var ids [recordChunk]uuid.UUID
	for start := 0; start < len(recs); start += recordChunk {
		n := 0 // ids parsed outside the lock
		for i := start; i < min(start+recordChunk, len(recs)); i++ {
			r := &recs[i]
			if r.key != nil { // made by the Service for this store: no need to find the key
				chunk[n], ids[n] = prepared{p: r.key, r: r}, r.key.id
				n++
			} else if u, ok := parseKeyID(r.KeyID); ok {
				chunk[n], ids[n] = prepared{r: r}, u
				n++
			}
		}
		m.mu.Lock()
		for i, c := range chunk[:n] {
			p := c.p
			if p == nil {
				k, ok := m.byID[ids[i]]
				if !ok {
					continue
				}
				p = m.keys.at(k)
			}
			m.applyLocked(p, c.r)
		}
		m.mu.Unlock()
		m.imu.Lock()
		for i, c := range chunk[:n] {
			if c.r.InstanceID != "" {
				m.recordInstanceLocked(ids[i], c.r)
			}
		}
		m.imu.Unlock()
	}
	return nil
}

// applyLocked applies r to p as Key.ApplyValidation would, copying r's
// metrics and violations unless p holds equal ones already (or, for
// metrics, r comes from the Service, see ValidationRecord.key).
func (m *MemoryStore) applyLocked(p *memKey, r *ValidationRecord) {
	if r.At.After(fromNanos(p.validated)) {
		p.validated = nanos(r.At)
	}
	if p.activated == 0 {
		p.activated = nanos(r.FirstAt)
		if p.activated == 0 {
			p.activated = nanos(r.At)
		}
	}
	name, url := m.keys.instanceName(p), m.keys.instanceURL(p)
	if r.InstanceName != "" && r.InstanceName != name || r.InstanceURL != "" && r.InstanceURL != url {
		if r.InstanceName != "" {
			name = r.InstanceName
		}
		if r.InstanceURL != "" {
			url = r.InstanceURL
		}
		m.keys.setInstance(p, name, url)
	}
	if e := m.keys.extraOf(p); r.Metrics != nil && !sameMap(e.metrics, r.Metrics) && (e.metrics == nil || !maps.Equal(e.metrics, r.Metrics)) {
		e.metrics = r.Metrics
		if r.key == nil {
			e.metrics = maps.Clone(r.Metrics)
		}
		m.keys.setExtra(p, e)
	}
	if v := m.keys.violations(p); r.Violations != nil && (v == nil || !slices.Equal(v, r.Violations)) {
		m.keys.setViolations(p, r.Violations)
	}
}

// sameMap reports whether a and b are one map (not merely equal ones).
func sameMap(a, b map[string]float64) bool {
	return a != nil && b != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
