package licensing

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
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

// heldKey is a Key a caller got from the store, with copies of its strings
// as they were then.
type heldKey struct {
	k       Key
	strings []string
}

func holdKey(k Key) heldKey {
	fields := []string{k.ID, k.OrganizationID, k.LookupValue, k.Digest, k.MaskedKey, k.InstanceName, k.InstanceURL, k.RotatedTo, k.RotatedFrom}
	copies := make([]string, len(fields))
	for i, s := range fields {
		copies[i] = strings.Clone(s)
	}
	return heldKey{k, copies}
}

func (h heldKey) unchanged() bool {
	k := h.k
	return slices.Equal([]string{k.ID, k.OrganizationID, k.LookupValue, k.Digest, k.MaskedKey, k.InstanceName, k.InstanceURL, k.RotatedTo, k.RotatedFrom}, h.strings)
}

// TestMemoryStoreStringsStayAcrossCompactions: validations through a
// Service, records that rewrite every key's instance name and URL (long
// enough to compact the instance arena several times), rotations, ListKeys
// and KeyByID run at once (run it with -race); every string the store
// handed out keeps its value to the end, and the keys read back what was
// last written.
func TestMemoryStoreStringsStayAcrossCompactions(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := NewMemoryStore()
	svc, err := New(Config{Store: st, Organizations: staticOrg{ID: "o", OwnerID: "u", Active: true},
		Pepper: bytes.Repeat([]byte("p"), 32), Logger: slog.New(slog.DiscardHandler), Policy: Policy{Issuer: "x"}})
	is.NoErr(err)
	defer svc.Close(ctx)
	const n, others = 64, 2000 // keys validated through the Service, and keys that only records rewrite
	full, ids := make([]string, n), make([]string, n, n+others)
	for i := range n {
		c, err := svc.CreateKey(ctx, Actor{UserID: "u", OrganizationID: "o"}, CreateKeyInput{InstanceName: fmt.Sprint("first ", i)})
		is.NoErr(err)
		full[i], ids[i] = c.LicenseKey, c.Key.ID
	}
	for i := range others {
		k := Key{ID: uuid.NewString(), OrganizationID: "o", LookupValue: fmt.Sprint("other-", i), MaskedKey: "ot...er", Active: true}
		is.NoErr(st.CreateKey(ctx, k))
		ids = append(ids, k.ID)
	}
	// 40 × 2,064 keys × 512 bytes: 40 MiB of instance URLs, past the 16 MiB
	// that starts a compaction, each one moving keys in several steps.
	const rounds = 40
	pad := strings.Repeat("u", 512)
	var wg sync.WaitGroup
	held := make([][]heldKey, 4)
	wg.Add(4)
	go func() { // records from elsewhere (a file store's replay, another writer), no Service pointer
		defer wg.Done()
		for round := range rounds {
			recs := make([]ValidationRecord, len(ids))
			for i := range recs {
				recs[i] = ValidationRecord{KeyID: ids[i], At: time.Unix(int64(round), 0), InstanceName: fmt.Sprint("name ", round, " ", i),
					InstanceURL: fmt.Sprintf("https://%d.example/%s/%d", i, pad, round), Violations: []string{fmt.Sprint(round)}}
			}
			if err := st.RecordValidations(ctx, recs); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() { // validations: the Service's records carry the store's pointer
		defer wg.Done()
		for round := range rounds {
			i := round % n
			if _, err := svc.ValidateKey(ctx, ValidateInput{LicenseKey: full[i], InstanceName: fmt.Sprint("validated ", round),
				Metrics: map[string]float64{"users": float64(round)}}); err != nil {
				t.Error(err)
			}
			k, _ := st.keyForValidation(indexOf(svc.cfg.Hasher.LookupValue(full[i])), svc.cfg.Hasher.LookupValue(full[i]))
			held[1] = append(held[1], holdKey(k))
		}
	}()
	go func() { // readers
		defer wg.Done()
		for round := range rounds {
			page, err := st.ListKeys(ctx, "o", KeyCursor{}, 8)
			if err != nil {
				t.Error(err)
			}
			for _, k := range page {
				held[2] = append(held[2], holdKey(k))
			}
			k, err := st.KeyByID(ctx, ids[round%n])
			if err != nil {
				t.Error(err)
			}
			held[2] = append(held[2], holdKey(k))
		}
	}()
	go func() { // rotations of half the keys
		defer wg.Done()
		for i := 0; i < n; i += 2 {
			nk := Key{ID: uuid.NewString(), OrganizationID: "o", LookupValue: fmt.Sprint("rotated-", i), Digest: fmt.Sprint("digest-", i),
				MaskedKey: "ro...ed", Active: true, CreatedAt: time.Unix(int64(i), 0)}
			old, err := st.RotateKey(ctx, ids[i], nk, time.Time{})
			if err != nil {
				t.Error(err)
			}
			held[3] = append(held[3], holdKey(old))
			k, err := st.KeyByID(ctx, nk.ID)
			if err != nil {
				t.Error(err)
			}
			held[3] = append(held[3], holdKey(k))
		}
	}()
	wg.Wait()
	is.NoErr(svc.Close(ctx)) // the last validations recorded
	st.mu.RLock()
	is.True(st.keys.inst.bytes()+st.keys.old.bytes() < 20<<20) // compacted: 40 MiB were written
	st.mu.RUnlock()
	for _, hs := range held {
		for _, h := range hs {
			is.True(h.unchanged()) // a string handed out keeps its value
		}
	}
	for i, id := range ids {
		if i >= n && i%100 != 0 {
			continue
		}
		k, err := st.KeyByID(ctx, id)
		is.NoErr(err)
		is.True(strings.HasSuffix(k.InstanceURL, fmt.Sprintf("/%d", rounds-1))) // the last URL written
		is.True(strings.HasPrefix(k.InstanceURL, fmt.Sprintf("https://%d.example/", i)))
		if i < n {
			is.Equal(k.LookupValue, svc.cfg.Hasher.LookupValue(full[i]))
		}
	}
}

// TestOrgLists: lists of organizations that grow at random, some by one
// key, some by many at once, keep their keys through every move, and the
// slice that holds them stays within four entries a key.
func TestOrgLists(t *testing.T) {
	is := is.New(t)
	r := rand.New(rand.NewPCG(3, 4))
	var o orgLists
	want := map[uint32][]uint32{}
	next := uint32(0)
	for step := range 200_000 {
		org := uint32(r.IntN(5000))
		if step%3 == 0 {
			org = uint32(r.IntN(20)) // a few large organizations
		}
		k := 1
		if step%100 == 0 {
			k = 1 + r.IntN(300)
		}
		list := o.extend(org, k)
		for i := len(list) - k; i < len(list); i++ {
			list[i] = next
			want[org] = append(want[org], next)
			next++
		}
		if step%1000 == 0 {
			is.True(len(o.keys) <= 4*int(next)) // the rooms lists left behind, and their own, at most four entries a key
		}
	}
	for org, keys := range want {
		is.Equal(o.list(org), keys)
	}
	is.True(o.list(99_999) == nil) // an organization with no keys
	is.Equal(len(o.list(99_999)), 0)
}
