package licensing

import (
	"context"
	"fmt"
	"runtime"
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
