package licensing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/matryer/is"
)

// loadKey is a key of org created at base plus minute minutes.
func loadKey(org string, minute int) Key {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	id := uuid.Must(uuid.NewRandom()).String()
	return Key{ID: id, OrganizationID: org, LookupValue: "l" + id, Digest: "d", MaskedKey: "m", Active: true,
		CreatedAt: base.Add(time.Duration(minute) * time.Minute)}
}

// A file store replays its snapshot, written in map order, through load in
// batches: whatever the order of keys within and across batches, the lists
// come out newest first.
func TestLoadInAnyOrderListsNewestFirst(t *testing.T) {
	for _, tc := range []struct {
		name    string
		batches [][]int // minutes of org-a's keys, per load call
	}{
		{"in order", [][]int{{1, 2, 3}, {4, 5}}},
		{"reversed", [][]int{{5, 4, 3}, {2, 1}}},
		{"new batch older than all", [][]int{{7, 8, 9}, {3, 1, 2}}},
		{"new batch inside", [][]int{{1, 5, 9}, {6, 2, 5, 4}}},
		{"ties", [][]int{{2, 2, 2}, {2, 1, 2, 3}}},
		{"shuffled", shuffledBatches(2000, 7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			m := NewMemoryStore()
			var want []Key
			for i, minutes := range tc.batches {
				var batch []Key
				for _, min := range minutes {
					batch = append(batch, loadKey("org-a", min))
				}
				batch = append(batch, loadKey(fmt.Sprint("org-", i), 0)) // another organization in the same batch
				is.NoErr(m.load(batch...))
				want = append(want, batch[:len(minutes)]...)
			}
			slices.SortFunc(want, func(a, b Key) int { // newest first, as ListKeys
				if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
					return c
				}
				return strings.Compare(b.ID, a.ID)
			})
			got, err := m.ListKeys(context.Background(), "org-a", KeyCursor{}, 0)
			is.NoErr(err)
			is.Equal(len(got), len(want))
			for i := range want {
				is.Equal(got[i].ID, want[i].ID) // newest first, ties by id
			}
		})
	}
}

func shuffledBatches(n, batches int) [][]int {
	minutes := rand.Perm(n)
	out := make([][]int, batches)
	for i, m := range minutes {
		out[i%batches] = append(out[i%batches], m)
	}
	return out
}

// BenchmarkLoadOneOrgShuffled loads 200,000 keys of one organization in
// random order, in batches as a file store's snapshot replay does: inserting
// them one by one was quadratic (4.6 s at 200,000 keys).
func BenchmarkLoadOneOrgShuffled(b *testing.B) {
	const n, batch = 200_000, 4096
	keys := make([]Key, n)
	for i, m := range rand.Perm(n) {
		keys[i] = loadKey("org-big", m)
	}
	for b.Loop() {
		m := NewMemoryStore()
		for i := 0; i < n; i += batch {
			if err := m.load(keys[i:min(i+batch, n)]...); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestLookupTable: the index of lookup values finds every key it was given
// by its value, through every growth and whatever the probe sequences,
// finds nothing for values it was not given, refuses a second key of one
// value, and stays at most half full.
func TestLookupTable(t *testing.T) {
	is := is.New(t)
	r := rand.New(rand.NewPCG(1, 2))
	tab := newLookupTable(0)
	var ks memKeys
	var lookups []string
	for i := 0; i < 20_000; i++ {
		l := fmt.Sprintf("%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()) // HMAC-like
		if i%4 == 0 {
			l = fmt.Sprintf("prefix-%d", i) // another Hasher's
		}
		ix := indexOf(l)
		p := ks.add(uuid.New(), Key{LookupValue: l, Digest: l, MaskedKey: "m"})
		is.True(tab.put(&ks, &ix, l, p))
		other := ks.add(uuid.New(), Key{LookupValue: l, Digest: l, MaskedKey: "m"})
		is.True(!tab.put(&ks, &ix, l, other)) // one key per value
		lookups = append(lookups, l)
	}
	is.Equal(tab.n, len(lookups))
	is.True(2*tab.n <= len(tab.slots))
	for _, l := range lookups {
		ix := indexOf(l)
		p := tab.get(&ks, &ix, l)
		is.True(p != nil)
		is.Equal(ks.lookup(p), l)
		miss := l[:len(l)-1] + "x"
		if l[len(l)-1] == 'x' {
			miss = l[:len(l)-1] + "y"
		}
		mix := indexOf(miss)
		is.True(tab.get(&ks, &mix, miss) == nil)
	}
}
