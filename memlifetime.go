package licensing

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
)

// SetKeyExpiry implements Store.
func (m *MemoryStore) SetKeyExpiry(ctx context.Context, id string, expiresAt time.Time) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	if !ValidExpiry(expiresAt) {
		return Key{}, ErrInvalidExpiry
	}
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
	if !p.active {
		return Key{}, ErrKeyRevoked
	}
	p.expires = nanos(expiresAt)
	m.trackExpiryLocked(p)
	return m.keys.key(p), nil
}

// RotateKey implements Store: every check is made before anything changes,
// under one hold of the write lock, so readers see either no rotation or
// all of it.
func (m *MemoryStore) RotateKey(ctx context.Context, oldID string, newKey Key, oldEndsAt time.Time) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	if !ValidExpiry(oldEndsAt) {
		return Key{}, ErrInvalidExpiry
	}
	u, ok := parseKeyID(oldID)
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	oi, ok := m.byID[u]
	if !ok {
		return Key{}, ErrKeyNotFound
	}
	old := m.keys.at(oi)
	extra := m.keys.extraOf(old) // its maps and slices are shared, never changed in place
	switch {
	case !old.active:
		return Key{}, ErrKeyRevoked
	case extra.rotatedTo != "":
		return Key{}, ErrKeyRotated
	}
	newKey.RotatedFrom, newKey.RotatedTo = m.keys.idString(old), ""
	newKey.InstanceName, newKey.InstanceURL = m.keys.instanceName(old), m.keys.instanceURL(old)
	newKey.ExpiresAt = fromNanos(old.expires)
	newKey.MaxInstances = extra.maxInstances
	np, err := m.insertLocked(newKey) // checks id and lookup value before it inserts
	if err != nil {
		return Key{}, err
	}
	extra.rotatedTo = m.keys.idString(np) // newKey.ID, in the store's own arena
	m.keys.setExtra(old, extra)
	if ends := nanos(oldEndsAt); ends != 0 && (old.expires == 0 || ends < old.expires) {
		old.expires = ends // the earlier of the two, zero being never
		m.trackExpiryLocked(old)
	}
	return m.keys.key(old), nil
}

// ExpiringKeys implements EventLog. It looks at the keys that have an
// expiry only.
func (m *MemoryStore) ExpiringKeys(ctx context.Context, until, afterExpiry time.Time, afterID string, limit int) ([]Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	untilN, afterN := until.UnixNano(), afterExpiry.UnixNano()
	afterU, _ := uuid.Parse(afterID) // "" (or no UUID) sorts first
	m.mu.RLock()
	var found []*memKey
	for i := range m.expiring {
		p := m.keys.at(i)
		if !p.active || p.expires == 0 || p.expires > untilN {
			continue
		}
		if p.expires < afterN || p.expires == afterN && compareUUID(p.id, afterU) <= 0 {
			continue
		}
		found = append(found, p)
	}
	slices.SortFunc(found, func(a, b *memKey) int {
		if c := cmp.Compare(a.expires, b.expires); c != 0 {
			return c
		}
		return compareUUID(a.id, b.id)
	})
	if limit > 0 && len(found) > limit {
		found = found[:limit]
	}
	keys := make([]Key, len(found))
	for i, p := range found {
		keys[i] = m.keys.key(p)
	}
	m.mu.RUnlock()
	return keys, nil
}

// compareUUID orders ids as their canonical strings sort.
func compareUUID(a, b uuid.UUID) int {
	for i := range a {
		if c := cmp.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return 0
}

// trackExpiryLocked keeps p in the index of keys with an expiry
// (ExpiringKeys) when it has one. Callers hold m.mu.
func (m *MemoryStore) trackExpiryLocked(p *memKey) {
	if p.expires != 0 {
		m.expiring[p.self] = struct{}{}
	} else {
		delete(m.expiring, p.self)
	}
}
