package licensing

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
)

// memInstances holds the instances of a MemoryStore's keys, under a mutex
// of its own so that seating an instance does not wait for key writes.
type memInstances struct {
	byKey map[uuid.UUID][]Instance // only keys the store holds (SeatInstance relies on it)
}

// SetMaxInstances implements Store.
func (m *MemoryStore) SetMaxInstances(ctx context.Context, id string, n int) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, err
	}
	if n < 0 || n > MaxInstancesLimit {
		return Key{}, ErrInvalidMaxInstances
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
	extra := m.keys.extraOf(p)
	extra.maxInstances = n
	m.keys.setExtra(p, extra)
	return m.keys.key(p), nil
}

// hasKey reports whether the store holds key u.
func (m *MemoryStore) hasKey(u uuid.UUID) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.byID[u]
	return ok
}

// SeatInstance implements Store. The update of a seated instance is made in
// memory at once.
func (m *MemoryStore) SeatInstance(ctx context.Context, keyID string, inst Instance, limit int, lease time.Duration) (int, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	u, ok := parseKeyID(keyID)
	if !ok {
		return 0, false, ErrKeyNotFound
	}
	m.imu.Lock()
	defer m.imu.Unlock()
	held, known := m.inst.byKey[u]
	if !known { // a key with instances exists (keys are never removed): only others are looked up
		m.imu.Unlock()
		exists := m.hasKey(u) // m.mu is never taken under m.imu
		m.imu.Lock()
		if !exists {
			return 0, false, ErrKeyNotFound
		}
		held = m.inst.byKey[u]
	}
	list, seated, added, err := seatInstance(held, inst, limit, lease)
	// Kept on ErrSeatLimit too: seatInstance pruned the key's list in place,
	// and the old length would show the emptied tail as instances.
	if len(list) == 0 {
		delete(m.inst.byKey, u)
	} else {
		m.inst.byKey[u] = list
	}
	if err != nil {
		return seated, false, err
	}
	return seated, added, nil
}

// seatInstance applies SeatInstance's rule to list (a key's instances, in
// any order) and returns the new list, the seats taken and whether inst is
// new: an instance whose lease ran out holds no seat, so it is new again
// (it takes one back only when one is free). It prunes list in place, so
// the caller keeps the returned list whatever the error: on ErrSeatLimit
// it is list pruned but otherwise unchanged. It
// is shared by the stores of this module that keep instances in memory.
func seatInstance(list []Instance, inst Instance, limit int, lease time.Duration) ([]Instance, int, bool, error) {
	now := inst.LastSeenAt
	live := list[:0]
	found := -1
	for _, in := range list {
		if now.Sub(in.LastSeenAt) >= lease {
			continue // holds no seat, inst included: it comes back as a new instance
		}
		if in.ID == inst.ID {
			found = len(live)
		}
		live = append(live, in)
	}
	clear(list[len(live):])
	if found >= 0 {
		live[found] = live[found].Merge(inst)
		return live, len(live), false, nil
	}
	if limit > 0 && len(live) >= limit {
		return live, len(live), false, ErrSeatLimit
	}
	if len(live) >= MaxInstancesLimit { // no limit, and full: forget the one seen least recently
		oldest := 0
		for i := range live {
			if live[i].LastSeenAt.Before(live[oldest].LastSeenAt) {
				oldest = i
			}
		}
		live = slices.Delete(live, oldest, oldest+1)
	}
	inst.FirstSeenAt = inst.LastSeenAt
	inst.Metrics = maps.Clone(inst.Metrics)
	return append(live, inst), len(live) + 1, true, nil
}

// liveInstances returns copies of list's instances seen less than lease
// before now, most recently seen first (then by id).
func liveInstances(list []Instance, now time.Time, lease time.Duration) []Instance {
	out := make([]Instance, 0, len(list))
	for _, in := range list {
		if now.Sub(in.LastSeenAt) < lease {
			in.Metrics = maps.Clone(in.Metrics)
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b Instance) int {
		if c := b.LastSeenAt.Compare(a.LastSeenAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// Instances implements Store.
func (m *MemoryStore) Instances(ctx context.Context, keyID string, now time.Time, lease time.Duration) ([]Instance, error) {
	u, ok := parseKeyID(keyID)
	if !ok || !m.hasKey(u) {
		return nil, ErrKeyNotFound
	}
	m.imu.Lock()
	defer m.imu.Unlock()
	return liveInstances(m.inst.byKey[u], now, lease), nil
}

// ReleaseInstance implements Store.
func (m *MemoryStore) ReleaseInstance(ctx context.Context, keyID, instanceID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u, ok := parseKeyID(keyID)
	if !ok || !m.hasKey(u) {
		return ErrKeyNotFound
	}
	m.imu.Lock()
	defer m.imu.Unlock()
	list := m.inst.byKey[u]
	i := slices.IndexFunc(list, func(in Instance) bool { return in.ID == instanceID })
	if i < 0 {
		return ErrInstanceNotFound
	}
	list = slices.Delete(list, i, i+1)
	if len(list) == 0 {
		delete(m.inst.byKey, u)
	} else {
		m.inst.byKey[u] = list
	}
	return nil
}

// recordInstanceLocked applies r, which has an InstanceID, to the instance
// it names, when key u still has it. The caller holds imu.
func (m *MemoryStore) recordInstanceLocked(u uuid.UUID, r *ValidationRecord) {
	list := m.inst.byKey[u]
	for i := range list {
		if list[i].ID == r.InstanceID {
			list[i] = list[i].Merge(Instance{LastSeenAt: r.At, Name: r.InstanceName, URL: r.InstanceURL, Metrics: r.Metrics})
			return
		}
	}
}

// eachInstances implements bulk.Ops.EachInstances.
func (m *MemoryStore) eachInstances(fn func(keyID string, list []Instance) bool) {
	m.imu.Lock()
	keys := make([]uuid.UUID, 0, len(m.inst.byKey))
	for u := range m.inst.byKey {
		keys = append(keys, u)
	}
	m.imu.Unlock()
	for _, u := range keys {
		m.imu.Lock()
		list := slices.Clone(m.inst.byKey[u])
		m.imu.Unlock()
		if len(list) == 0 {
			continue // released meanwhile
		}
		for i := range list {
			list[i].Metrics = maps.Clone(list[i].Metrics)
		}
		if !fn(u.String(), list) {
			return
		}
	}
}

// loadInstances implements bulk.Ops.LoadInstances.
func (m *MemoryStore) loadInstances(keyID string, list []Instance) error {
	u, ok := parseKeyID(keyID)
	if !ok || !m.hasKey(u) {
		return fmt.Errorf("instances of key %s: %w", keyID, ErrKeyNotFound)
	}
	m.imu.Lock()
	defer m.imu.Unlock()
	if len(list) == 0 {
		delete(m.inst.byKey, u)
		return nil
	}
	m.inst.byKey[u] = slices.Clone(list)
	return nil
}

// hasInstance implements bulk.Ops.HasInstance.
func (m *MemoryStore) hasInstance(keyID, id string) bool {
	u, ok := parseKeyID(keyID)
	if !ok {
		return false
	}
	m.imu.Lock()
	defer m.imu.Unlock()
	return slices.ContainsFunc(m.inst.byKey[u], func(in Instance) bool { return in.ID == id })
}

// refreshInstance implements bulk.Ops.RefreshInstance.
func (m *MemoryStore) refreshInstance(keyID string, inst Instance, lease time.Duration) (int, bool) {
	u, ok := parseKeyID(keyID)
	if !ok {
		return 0, false
	}
	now := inst.LastSeenAt
	m.imu.Lock()
	defer m.imu.Unlock()
	list := m.inst.byKey[u]
	found, seated := -1, 0
	for i := range list {
		if now.Sub(list[i].LastSeenAt) >= lease {
			continue
		}
		seated++
		if list[i].ID == inst.ID {
			found = i
		}
	}
	if found < 0 {
		return 0, false
	}
	list[found] = list[found].Merge(inst)
	return seated, true
}

// replaySeat implements bulk.Ops.ReplaySeat.
func (m *MemoryStore) replaySeat(keyID string, inst Instance, lease time.Duration) error {
	u, ok := parseKeyID(keyID)
	if !ok || !m.hasKey(u) {
		return ErrKeyNotFound
	}
	m.imu.Lock()
	defer m.imu.Unlock()
	list := m.inst.byKey[u]
	if len(list) >= MaxInstancesLimit {
		list, _, _, _ = seatInstance(list, inst, 0, lease) // as the seat did: prune, then make room
		m.inst.byKey[u] = list
		return nil
	}
	now := inst.LastSeenAt
	if i := slices.IndexFunc(list, func(in Instance) bool { return in.ID == inst.ID }); i >= 0 {
		if now.Sub(list[i].LastSeenAt) < lease {
			list[i] = list[i].Merge(inst)
			return nil
		}
		list = slices.Delete(list, i, i+1) // its lease had run out: seated anew
	}
	inst.FirstSeenAt = inst.LastSeenAt
	inst.Metrics = maps.Clone(inst.Metrics)
	m.inst.byKey[u] = append(list, inst)
	return nil
}

// pruneInstances implements bulk.Ops.PruneInstances.
func (m *MemoryStore) pruneInstances(keyID string, now time.Time, lease time.Duration) {
	u, ok := parseKeyID(keyID)
	if !ok {
		return
	}
	m.imu.Lock()
	defer m.imu.Unlock()
	list := slices.DeleteFunc(m.inst.byKey[u], func(in Instance) bool { return now.Sub(in.LastSeenAt) >= lease })
	if len(list) == 0 {
		delete(m.inst.byKey, u)
	} else {
		m.inst.byKey[u] = list
	}
}
