package licensing

import (
	"time"

	"github.com/licensekit/licensing/internal/bulk"
)

// len returns the number of keys stored.
func (m *MemoryStore) len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.byID)
}

// each calls fn with a copy of every key, in no order, until fn returns
// false. Writers wait until it returns.
func (m *MemoryStore) each(fn func(Key) bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for i := range m.keys.n {
		if !fn(m.keys.key(m.keys.at(i))) {
			return
		}
	}
}

// BulkOps returns the memory store's bulk operations to the stores of this
// module (package filestore keeps its keys in a MemoryStore and loads its
// log through them). It is unusable outside this module: its argument's
// type lives in an internal package.
func (m *MemoryStore) BulkOps(bulk.Capability) bulk.Ops[Key, Instance] { return memBulk{m} }

// memBulk implements bulk.Ops for a MemoryStore.
type memBulk struct{ m *MemoryStore }

func (b memBulk) Load(keys ...Key) error { return b.m.load(keys...) }

func (b memBulk) Reserve(n int) { b.m.reserve(n) }

func (b memBulk) Each(fn func(Key) bool) { b.m.each(fn) }

func (b memBulk) Len() int { return b.m.len() }

func (b memBulk) EachInstances(fn func(string, []Instance) bool) {
	b.m.eachInstances(fn)
}

func (b memBulk) LoadInstances(keyID string, list []Instance) error {
	return b.m.loadInstances(keyID, list)
}

func (b memBulk) HasInstance(keyID, id string) bool { return b.m.hasInstance(keyID, id) }

func (b memBulk) RefreshInstance(keyID string, inst Instance, lease time.Duration) (int, bool) {
	return b.m.refreshInstance(keyID, inst, lease)
}

func (b memBulk) ReplaySeat(keyID string, inst Instance, lease time.Duration) error {
	return b.m.replaySeat(keyID, inst, lease)
}

func (b memBulk) PruneInstances(keyID string, now time.Time, lease time.Duration) {
	b.m.pruneInstances(keyID, now, lease)
}
