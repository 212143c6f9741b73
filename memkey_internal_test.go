package licensing

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/matryer/is"
)

// TestMemoryStoreKeysHoldNoObjectEach: a hundred thousand keys, with
// instance names and URLs, some revoked, some with expiries, in two
// organizations, add fewer than one heap object per hundred keys, so that
// the collector's work at each cycle does not grow with the store
// (issue 19: validation at a million keys as fast as at a thousand).
func TestMemoryStoreKeysHoldNoObjectEach(t *testing.T) {
	is := is.New(t)
	const n = 100_000
	ctx := context.Background()
	m := NewMemoryStore()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	before, _ := heapReading()
	for i := range n {
		k := Key{ID: uuid.NewString(), OrganizationID: fmt.Sprintf("org-%d", i%2), LookupValue: fmt.Sprintf("%064x", i),
			MaskedKey: "lk_abcd...wxyz", InstanceName: fmt.Sprintf("site-%d", i), InstanceURL: fmt.Sprintf("https://site-%d.example", i),
			Active: true, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		if i%10 == 0 {
			k.ExpiresAt = t0.AddDate(1, 0, 0)
		}
		is.NoErr(m.CreateKey(ctx, k))
		if i%7 == 0 {
			_, err := m.RevokeKey(ctx, k.ID, t0)
			is.NoErr(err)
		}
	}
	after, _ := heapReading()
	t.Logf("%d keys: %d heap objects more", n, int64(after)-int64(before))
	is.True(after < before+n/100)
	page, err := m.ListKeys(ctx, "org-1", KeyCursor{}, 3)
	is.NoErr(err)
	is.Equal(len(page), 3)
	is.Equal(page[0].InstanceName, fmt.Sprintf("site-%d", n-1)) // newest first
	runtime.KeepAlive(m)
}

// TestMemKeysInstanceArenaCompacted: instance names and URLs written again
// and again leave the arena at most about twice what the keys use, and
// every key, and every string read before a compaction, keeps its value.
func TestMemKeysInstanceArenaCompacted(t *testing.T) {
	is := is.New(t)
	var ks memKeys
	var ps []*memKey
	for i := range 1000 {
		ps = append(ps, ks.add(uuid.New(), Key{LookupValue: fmt.Sprint(i), InstanceName: "first", InstanceURL: "https://first.example"}))
	}
	early := ks.instanceName(ps[0])
	pad := strings.Repeat("n", 200)
	for round := range 200 { // 200 × 1000 × ~230 bytes: well past the 16 MiB that starts a compaction
		for i, p := range ps {
			ks.setInstance(p, fmt.Sprintf("%s-%d-%d", pad, i, round), fmt.Sprintf("https://%d.example/%d", i, round))
		}
	}
	is.Equal(early, "first")
	for i, p := range ps {
		is.Equal(ks.instanceName(p), fmt.Sprintf("%s-%d-199", pad, i))
		is.Equal(ks.instanceURL(p), fmt.Sprintf("https://%d.example/199", i))
		is.Equal(ks.lookup(p), fmt.Sprint(i)) // the fixed strings are untouched
	}
	used := 0
	for _, p := range ps {
		used += int(p.inst.n)
	}
	is.True(ks.inst.bytes() <= 2*used+16<<20+arenaChunk)
	is.True(ks.inst.bytes() < 40<<20) // 46 MB were written
}

// TestMemKeysEmptyViolationsTakeNoExtra: a valid key's validation records
// carry violations that are empty, not nil (ValidationResult.Violations is
// never nil when valid), and a store whose keys are all validated without
// metrics holds no extra for any of them, while every key still reads its
// LastViolations back as empty, not nil, and a later record with
// violations, then one without, reads back as each said.
func TestMemKeysEmptyViolationsTakeNoExtra(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	m := NewMemoryStore()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []ValidationRecord
	for i := range 1000 {
		k := Key{ID: uuid.NewString(), OrganizationID: "org-1", LookupValue: fmt.Sprintf("%064x", i), MaskedKey: "m",
			Active: true, CreatedAt: t0}
		if i%2 == 0 {
			k.LastViolations = []string{} // as loaded from a file store's snapshot
			is.NoErr(m.load(k))
		} else {
			is.NoErr(m.CreateKey(ctx, k))
		}
		recs = append(recs, ValidationRecord{KeyID: k.ID, At: t0, Violations: []string{}})
	}
	is.NoErr(m.RecordValidations(ctx, recs))
	is.Equal(len(m.keys.extras), 0) // no extra for an empty list of violations
	for _, r := range recs {
		k, err := m.KeyByID(ctx, r.KeyID)
		is.NoErr(err)
		is.True(k.LastViolations != nil) // empty, not nil
		is.Equal(len(k.LastViolations), 0)
		v, p := m.keyForValidation(indexOf(k.LookupValue), k.LookupValue)
		is.True(p != nil)
		is.True(v.LastViolations != nil) // the validate path reads it too
	}
	id := recs[0].KeyID
	is.NoErr(m.RecordValidations(ctx, []ValidationRecord{{KeyID: id, At: t0, Violations: []string{"too many users"}}}))
	k, _ := m.KeyByID(ctx, id)
	is.Equal(k.LastViolations, []string{"too many users"})
	k.LastViolations[0] = "changed"
	k, _ = m.KeyByID(ctx, id)
	is.Equal(k.LastViolations, []string{"too many users"}) // a copy
	is.NoErr(m.RecordValidations(ctx, []ValidationRecord{{KeyID: id, At: t0, Violations: []string{}}}))
	k, _ = m.KeyByID(ctx, id)
	is.True(k.LastViolations != nil)
	is.Equal(len(k.LastViolations), 0) // back to none
	is.NoErr(m.RecordValidations(ctx, []ValidationRecord{{KeyID: id, At: t0}}))
	k, _ = m.KeyByID(ctx, id)
	is.True(k.LastViolations != nil) // a record without violations leaves them
	fresh := Key{ID: uuid.NewString(), OrganizationID: "org-1", LookupValue: "fresh", MaskedKey: "m", Active: true, CreatedAt: t0}
	is.NoErr(m.CreateKey(ctx, fresh))
	k, _ = m.KeyByID(ctx, fresh.ID)
	is.True(k.LastViolations == nil) // never validated: nil
}

// TestMemoryStoreRotatedKeysHoldNoObjectEach: keys loaded as a file store
// loads them (each key's strings cut from one string of its record), one in
// ten of them rotated, in a hundred organizations, then rotated again
// through RotateKey with ids made for the call, add fewer than one heap
// object per hundred keys: the store keeps none of the strings it was
// given (a rotated key's RotatedTo kept its whole record alive, and so did
// the first key of each organization).
func TestMemoryStoreRotatedKeysHoldNoObjectEach(t *testing.T) {
	is := is.New(t)
	const n = 100_000
	ctx := context.Background()
	m := NewMemoryStore()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	id := func(i int) string {
		return uuid.UUID{0: byte(i >> 16), 1: byte(i >> 8), 2: byte(i), 6: 0x40, 8: 0x80}.String()
	}
	before := heapObjects()
	batch := make([]Key, 0, 4096)
	for i := range n {
		rec := fmt.Sprintf("%s%064xorg-%03d%s%s", id(i), i, i%100, id(n+i), id(2*n+i)) // one allocation, as the file store's decoder makes
		k := Key{ID: rec[:36], LookupValue: rec[36:100], OrganizationID: rec[100:107], MaskedKey: "lk_abcd...wxyz",
			Active: true, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		if i%10 == 0 {
			k.RotatedTo, k.RotatedFrom = rec[107:143], rec[143:]
		}
		batch = append(batch, k)
		if len(batch) == cap(batch) || i == n-1 {
			is.NoErr(m.load(batch...))
			clear(batch)
			batch = batch[:0]
		}
	}
	for i := 1; i < n; i += 10 { // keys not rotated yet
		nk := Key{ID: id(3*n + i), OrganizationID: fmt.Sprintf("org-%03d", i%100), LookupValue: fmt.Sprintf("r%063x", i),
			MaskedKey: "lk_abcd...wxyz", Active: true, CreatedAt: t0}
		_, err := m.RotateKey(ctx, id(i), nk, time.Time{})
		is.NoErr(err)
	}
	after := heapObjects()
	t.Logf("%d keys, %d rotated: %d heap objects more", n, n/5, int64(after)-int64(before))
	is.True(after < before+n/100)
	k, err := m.KeyByID(ctx, id(10))
	is.NoErr(err)
	is.Equal(k.RotatedTo, id(n+10))
	is.Equal(k.RotatedFrom, id(2*n+10))
	is.Equal(k.OrganizationID, "org-010")
	k, err = m.KeyByID(ctx, id(11))
	is.NoErr(err)
	is.Equal(k.RotatedTo, id(3*n+11))
	runtime.KeepAlive(m)
}

// TestMemoryStoreOrganizationsHoldNoObjectEach: a hundred thousand keys in
// fifty thousand organizations (a key or two each, as customers who each
// run a copy or two), created one by one and loaded in batches, add fewer
// than one heap object per hundred keys (each organization's list of keys
// was an object of its own), and list newest first.
func TestMemoryStoreOrganizationsHoldNoObjectEach(t *testing.T) {
	const n = 100_000
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := func(i int) Key {
		return Key{ID: uuid.NewString(), OrganizationID: fmt.Sprintf("org-%d", i%(n/2)), LookupValue: fmt.Sprintf("%064x", i),
			MaskedKey: "lk_abcd...wxyz", Active: true, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
	}
	for _, how := range []string{"create", "load"} {
		t.Run(how, func(t *testing.T) {
			is := is.New(t)
			m := NewMemoryStore()
			before := heapObjects()
			batch := make([]Key, 0, 4096)
			for i := range n {
				if how == "create" {
					is.NoErr(m.CreateKey(ctx, key(i)))
					continue
				}
				batch = append(batch, key(n-1-i)) // newest first: each batch older than the last
				if len(batch) == cap(batch) || i == n-1 {
					is.NoErr(m.load(batch...))
					batch = batch[:0]
				}
			}
			clear(batch[:cap(batch)])
			after := heapObjects()
			t.Logf("%d keys in %d organizations: %d heap objects more", n, n/2, int64(after)-int64(before))
			is.True(after < before+n/100)
			for _, org := range []int{0, 1, n/2 - 1} {
				page, err := m.ListKeys(ctx, fmt.Sprint("org-", org), KeyCursor{}, 0)
				is.NoErr(err)
				is.Equal(len(page), 2)
				is.Equal(page[0].LookupValue, fmt.Sprintf("%064x", org+n/2)) // newest first
				is.Equal(page[1].LookupValue, fmt.Sprintf("%064x", org))
			}
			runtime.KeepAlive(m)
		})
	}
}

// TestMemKeysInstanceArenaCompactedInSteps: the compaction of the
// instance arena moves the strings of a bounded number of keys at each
// write, not of every key at once: no write of an instance name allocates
// more than a couple of arena chunks, whatever the store's size (the write
// lock is held meanwhile, and validations wait for it: a store of a million
// keys waited a third of a second), while the arena stays bounded and every
// key keeps its values.
func TestMemKeysInstanceArenaCompactedInSteps(t *testing.T) {
	is := is.New(t)
	var ks memKeys
	const n = 100_000 // about 11 MB of names and URLs
	ps := make([]*memKey, n)
	for i := range ps {
		ps[i] = ks.add(uuid.New(), Key{LookupValue: fmt.Sprint(i), InstanceName: fmt.Sprintf("Production site %d", i),
			InstanceURL: fmt.Sprintf("https://licenses-%d.example.com/app/%s", i, strings.Repeat("p", 50))})
	}
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocated := func() uint64 { metrics.Read(allocs); return allocs[0].Value.Uint64() }
	var most uint64
	const rounds = 8
	for round := range rounds { // each round rewrites every name: past the live bytes and 16 MiB, a compaction each round or two
		for i, p := range ps {
			name := fmt.Sprintf("Production site %d, round %d", i, round)
			before := allocated()
			ks.setInstance(p, name, ks.instanceURL(p))
			most = max(most, allocated()-before)
		}
	}
	t.Logf("the most one write allocated: %d bytes", most)
	is.True(most <= 3*arenaChunk) // a chunk or two, not the whole arena
	for i, p := range ps {
		is.Equal(ks.instanceName(p), fmt.Sprintf("Production site %d, round %d", i, rounds-1))
		is.True(strings.HasPrefix(ks.instanceURL(p), fmt.Sprintf("https://licenses-%d.example.com/app/", i)))
	}
	used := 0
	for _, p := range ps {
		used += int(p.inst.n)
	}
	is.True(ks.inst.bytes()+ks.old.bytes() <= 3*used+16<<20) // compacted: 8 × 12 MB were written
}

// TestMemKeysExtrasReused: a key has at most one extra, whatever is written
// to it and how often (limits, metrics, violations, a rotation), and a
// write that leaves its rare fields zero (a limit of 0 on a key without
// one) takes none.
func TestMemKeysExtrasReused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	m := NewMemoryStore()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 100 {
		k := Key{ID: uuid.NewString(), OrganizationID: "o", LookupValue: fmt.Sprint(i), MaskedKey: "m", Active: true, CreatedAt: t0}
		is.NoErr(m.CreateKey(ctx, k))
		ids = append(ids, k.ID)
	}
	for _, id := range ids[50:] {
		k, err := m.SetMaxInstances(ctx, id, 0)
		is.NoErr(err)
		is.Equal(k.MaxInstances, 0)
	}
	is.Equal(len(m.keys.extras), 0) // nothing to hold
	for round := range 5 {
		for _, id := range ids[:50] {
			_, err := m.SetMaxInstances(ctx, id, 1+round)
			is.NoErr(err)
			is.NoErr(m.RecordValidations(ctx, []ValidationRecord{{KeyID: id, At: t0,
				Metrics: map[string]float64{"users": float64(round)}, Violations: []string{fmt.Sprint(round)}}}))
		}
	}
	_, err := m.RotateKey(ctx, ids[0], Key{ID: uuid.NewString(), OrganizationID: "o", LookupValue: "next", MaskedKey: "m", Active: true}, time.Time{})
	is.NoErr(err)
	is.Equal(len(m.keys.extras), 51) // one each, and one for the new key of the rotation
	k, _ := m.KeyByID(ctx, ids[1])
	is.Equal(k.MaxInstances, 5)
	is.Equal(k.LastMetrics["users"], 4.0)
	is.Equal(k.LastViolations, []string{"4"})
}

// heapObjects returns the objects on the heap after a full collection.
func heapObjects() uint64 {
	objects, _ := heapReading()
	return objects
}
