package licensing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"github.com/matryer/is"

	"github.com/licensekit/licensing/internal/bulk"
)

// createdEvent is a key.created event as the Service appends it, of key i
// of organization org.
func createdEvent(org string, i int) Event {
	base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	return Event{ID: uuid.Must(uuid.NewV7()).String(), Type: EventKeyCreated, Time: base.Add(time.Duration(i) * time.Millisecond),
		KeyID: uuid.Must(uuid.NewRandom()).String(), OrganizationID: org, MaskedKey: "0123abcd...89abcdef", UserID: "user-1"}
}

// appendCreated appends n key.created events to m, in batches, keeping none
// of them outside the store.
func appendCreated(tb testing.TB, m *MemoryStore, n int) {
	tb.Helper()
	const batch = 1000
	events := make([]Event, 0, batch)
	for i := 0; i < n; i += batch {
		events = events[:0]
		for j := i; j < min(i+batch, n); j++ {
			events = append(events, createdEvent(fmt.Sprint("org-", j%10), j))
		}
		if err := m.AppendEvents(context.Background(), events); err != nil {
			tb.Fatal(err)
		}
	}
	clear(events[:cap(events)])
}

// heapReading is what the collector has to look at after a forced
// collection: heap objects and scannable heap bytes.
func heapReading() (objects, scan uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/objects:objects"}, {Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// BenchmarkEventLogGC is a forced collection (runtime.GC) with 1,000,000
// key.created events in a MemoryStore's event log; it reports the best
// one (gc-ms: run it with -benchtime 5x for the best of 5), the heap
// objects and the scannable and live heap bytes an event.
func BenchmarkEventLogGC(b *testing.B) {
	const n = 1_000_000
	m := NewMemoryStore()
	appendCreated(b, m, n)
	objects, scan := heapReading()
	best := time.Duration(1 << 62)
	for b.Loop() {
		start := time.Now()
		runtime.GC()
		best = min(best, time.Since(start))
	}
	b.ReportMetric(float64(best.Microseconds())/1000, "gc-ms")
	b.ReportMetric(float64(objects), "heap-objects")
	b.ReportMetric(float64(scan)/n, "scan-B/event")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/n, "heap-B/event")
	runtime.KeepAlive(m)
}

// TestEventLogHeldWithoutObjectsPerEvent: 100,000 events appended to a
// MemoryStore leave the collector fewer than 1,000 new heap objects and
// fewer than 2 new scannable bytes an event to look at (an Event a heap
// object with its strings, as the log held them, was 3 objects and 400
// scannable bytes an event, and a forced collection with a million of them
// took 100 ms).
func TestEventLogHeldWithoutObjectsPerEvent(t *testing.T) {
	is := is.New(t)
	const n = 100_000
	m := NewMemoryStore()
	objects, scan := heapReading()
	appendCreated(t, m, n)
	objectsAfter, scanAfter := heapReading()
	t.Logf("%d events: %d more heap objects, %d more scannable bytes", n, int64(objectsAfter-objects), int64(scanAfter-scan))
	is.True(int64(objectsAfter-objects) < n/100) // heap objects
	is.True(int64(scanAfter-scan) < 2*n)         // scannable bytes
	all, err := m.EventsAfter(context.Background(), 0, 0)
	is.NoErr(err)
	is.Equal(len(all), n) // all held
}

// eventModel is the EventLog contract over a plain slice, as the memory
// store's log answered before it held its events without pointers: what
// the log must still answer.
type eventModel struct {
	list []Event
	last uint64
}

func (m *eventModel) append(events []Event) {
	held := map[string]bool{}
	for _, e := range m.list {
		held[e.ID] = true
	}
	for _, e := range events {
		if held[e.ID] {
			continue
		}
		held[e.ID] = true
		m.last++
		e.Seq, e.Time, e.ExpiresAt = m.last, e.Time.UTC(), e.ExpiresAt.UTC()
		m.list = append(m.list, e)
	}
}

func (m *eventModel) events(org string, q EventQuery) []Event {
	out := []Event{}
	for i := len(m.list) - 1; i >= 0 && (q.Limit <= 0 || len(out) < q.Limit); i-- {
		e := m.list[i]
		if e.OrganizationID == org && (q.KeyID == "" || e.KeyID == q.KeyID) && (q.Type == "" || e.Type == q.Type) && (q.Before == 0 || e.Seq < q.Before) {
			out = append(out, e)
		}
	}
	return out
}

func (m *eventModel) prune(before time.Time, keep int) int {
	list := m.list
	if keep > 0 && len(list) > keep {
		list = list[len(list)-keep:]
	}
	var kept []Event
	for _, e := range list {
		if before.IsZero() || !e.Time.Before(before) {
			kept = append(kept, e)
		}
	}
	deleted := len(m.list) - len(kept)
	m.list = kept
	return deleted
}

// TestEventLogAnswersAsTheModel runs random appends (ids appended again,
// pruned or not; empty strings; ids and key ids longer than an arena
// chunk; one key's events interleaved with others'; Times in order, or
// going back now and then; expiries zero, at the Unix epoch, in another
// zone), prunes (by age and by count, everything, across chunk ends) and
// queries (by organization and key, with a Type, a Before cursor and a
// Limit) against the log and eventModel, with hashes spread and with
// hashes that collide for every id and key id.
func TestEventLogAnswersAsTheModel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hash      func(string) uint64
		timesBack bool
	}{
		{"times in order", nil, false},
		{"times going back", nil, true},
		{"every hash collides", func(string) uint64 { return 42 }, true},
		{"some hashes collide, times in order", func(s string) uint64 { return uint64(len(s) % 3) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			r := rand.New(rand.NewPCG(5, 6))
			m := NewMemoryStore()
			m.events.hash = tc.hash
			var model eventModel
			base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
			clock := base
			long := strings.Repeat("L", arenaChunk/3)
			pick := func(vals ...string) string { return vals[r.IntN(len(vals))] }
			types := []EventType{EventKeyCreated, EventKeyValidated, EventKeyRevoked}
			id := func() string {
				switch n := r.IntN(400); {
				case n < 4:
					return long + fmt.Sprint(n) // longer than a third of a chunk
				default:
					return fmt.Sprint("ev-", n) // ids come again
				}
			}
			for step := range 1500 {
				switch op := r.IntN(10); {
				case op < 6:
					var batch []Event
					for range 1 + r.IntN(4) {
						clock = clock.Add(time.Duration(r.IntN(90)) * time.Second)
						at := clock
						if tc.timesBack && r.IntN(10) == 0 {
							at = clock.Add(-time.Duration(r.IntN(3600)) * time.Second)
						}
						e := Event{ID: id(), Type: types[r.IntN(len(types))], Time: at.Add(time.Duration(r.IntN(1e9))),
							KeyID: pick("", "k1", "k2", "k3", long+"key"), OrganizationID: pick("", "org-a", "org-b"),
							MaskedKey: pick("", "0123abcd...89abcdef"), UserID: pick("", "user-1"), Outcome: Outcome(pick("", string(OutcomeRevoked))),
							InstanceCount: r.IntN(3) - 1, MaxInstances: r.IntN(1 << 40),
							ExpiresAt: []time.Time{{}, time.Unix(0, 0), at.In(time.FixedZone("x", 5*3600+7))}[r.IntN(3)],
							RotatedTo: pick("", "k9"), InstanceID: pick("", "inst-\u00e9 1")}
						batch = append(batch, e)
						if r.IntN(5) == 0 {
							batch = append(batch, e) // twice in one batch
						}
					}
					is.NoErr(m.AppendEvents(ctx, batch))
					model.append(batch)
				case op < 7:
					var before time.Time
					if r.IntN(2) == 0 {
						before = clock.Add(-time.Duration(r.IntN(7200)) * time.Second)
					}
					keep := []int{0, 0, 1, 5, 50, 200}[r.IntN(6)]
					if r.IntN(20) == 0 {
						before = clock.Add(time.Hour) // everything
					}
					got, err := m.PruneEvents(ctx, before, keep)
					is.NoErr(err)
					is.Equal(got, model.prune(before, keep)) // deleted count
				default:
					q := EventQuery{KeyID: pick("", "k1", "k2", long+"key"), Limit: r.IntN(5) - 1} // -1: all, as 0
					if r.IntN(2) == 0 {
						q.Type = types[r.IntN(len(types))]
					}
					if r.IntN(2) == 0 && model.last > 0 {
						q.Before = 1 + r.Uint64N(model.last+1)
					}
					org := pick("", "org-a", "org-b", "org-none")
					got, err := m.Events(ctx, org, q)
					is.NoErr(err)
					is.Equal(got, model.events(org, q))
				}
				if step%10 == 0 {
					checkEventIndexes(t, &m.events)
					all, err := m.EventsAfter(ctx, 0, 0)
					is.NoErr(err)
					if len(model.list) == 0 {
						is.Equal(len(all), 0)
					} else {
						is.Equal(all, model.list)
					}
					after := r.Uint64N(model.last + 2)
					page, err := m.EventsAfter(ctx, after, 3)
					is.NoErr(err)
					var want []Event
					for _, e := range model.list {
						if e.Seq > after && len(want) < 3 {
							want = append(want, e)
						}
					}
					is.Equal(len(page), len(want))
					for i := range want {
						is.Equal(page[i], want[i])
					}
				}
			}
			is.Equal(m.EventOps(bulk.Capability{}).LastSeq(), model.last) // Seqs never reused
		})
	}
}

// checkEventIndexes checks that the log's indexes hold its events and
// nothing else, and that its arena holds the strings of its events, and
// beyond them at most two chunks or as many bytes again of deleted
// events' strings: what pruning keeps (tidyStrings).
func checkEventIndexes(t *testing.T, l *memEvents) {
	t.Helper()
	is := is.NewRelaxed(t)
	keys, held := map[uint64]bool{}, 0
	for i := range l.recs {
		if k := l.field(i, fieldKey); k != "" {
			keys[l.hashOf(k)] = true
		}
		held += int(l.recs[i].strs.n)
	}
	orgSeqs := 0
	for _, seqs := range l.byOrg {
		orgSeqs += len(seqs)
	}
	is.Equal(l.ids.len()+len(l.collided), len(l.recs)) // an id each
	is.Equal(l.heads.len(), len(keys))                 // a chain for each key hash held
	is.Equal(orgSeqs, len(l.recs))                     // a Seq each in its organization's
	if len(l.recs) == 0 {
		is.Equal(l.strs.bytes(), 0)
		return
	}
	is.Equal(l.held, held)                                  // the bytes of its events' strings, counted
	is.True(l.strs.bytes()-held <= max(2*arenaChunk, held)) // deleted events' strings: at most two chunks, or as many as the kept ones'
}

// TestEventLogTimesExact: the log gives back Time and ExpiresAt as they
// were appended, in UTC, to the nanosecond: the zero ExpiresAt stays zero
// and the Unix epoch stays the epoch, and times before 1678 and after 2262
// (beyond UnixNano) are kept.
func TestEventLogTimesExact(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	for i, tc := range []struct{ at, expires time.Time }{
		{time.Date(2026, 4, 1, 12, 0, 0, 123456789, zone), time.Time{}},
		{time.Unix(0, 1), time.Unix(0, 0)},
		{time.Time{}.Add(1), time.Date(1600, 2, 29, 23, 59, 59, 999999999, time.UTC)},
		{time.Date(2300, 1, 1, 0, 0, 0, 1, zone), time.Date(9999, 12, 31, 23, 59, 59, 999999999, zone)},
	} {
		m := NewMemoryStore()
		e := Event{ID: fmt.Sprint("ev-", i), Type: EventKeyRenewed, Time: tc.at, ExpiresAt: tc.expires}
		is.NoErr(m.AppendEvents(ctx, []Event{e}))
		got, err := m.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		e.Seq, e.Time, e.ExpiresAt = 1, tc.at.UTC(), tc.expires.UTC()
		is.Equal(got, []Event{e})                                // every field, time.Time's representation included
		is.Equal(got[0].ExpiresAt.IsZero(), tc.expires.IsZero()) // zero stays zero, and only zero
	}
}

// TestEventLogPruneReleasesMemory: a log of 100,000 events pruned to its
// newest 10 keeps memory for about 10 events: its records, its arena (at
// most the chunk of its oldest event) and the slots of its hash tables,
// which do not stay sized for the events it held.
func TestEventLogPruneReleasesMemory(t *testing.T) {
	is := is.New(t)
	const n, left = 100_000, 10
	m := NewMemoryStore()
	appendCreated(t, m, n)
	deleted, err := m.PruneEvents(context.Background(), time.Time{}, left)
	is.NoErr(err)
	is.Equal(deleted, n-left)
	l := &m.events
	checkEventIndexes(t, l)
	is.True(cap(l.recs) <= 2*left)        // records
	is.True(l.strs.bytes() <= arenaChunk) // arena: one chunk
	is.True(len(l.ids.slots) <= 8*left)   // id table
	is.True(len(l.heads.slots) <= 8*left) // key table
	all, err := m.EventsAfter(context.Background(), 0, 0)
	is.NoErr(err)
	is.Equal(len(all), left)
	for _, e := range all {
		got, err := m.Events(context.Background(), e.OrganizationID, EventQuery{KeyID: e.KeyID})
		is.NoErr(err)
		is.Equal(got, []Event{e}) // found through the shrunk tables
	}
}

// TestEventLogAdversarialIDs: ids and key ids that are prefixes of one
// another, hold bytes 0x00 and 0xff or invalid UTF-8, are 10 KB long, or
// are the same in every event of a batch, appended again, pruned and
// appended again, answer as eventModel does, with hashes that collide for
// every string, for prefixes (the hash of the first byte) and spread.
func TestEventLogAdversarialIDs(t *testing.T) {
	long := strings.Repeat("\xff", 10<<10)
	strs := []string{"a", "a\x00", "a\x00\x00", "\x00", "\xff", "\xff\xfe", "\xc3", "\xc3\xa9", long, long + "\x00", long[:len(long)-1]}
	for _, tc := range []struct {
		name string
		hash func(string) uint64
	}{
		{"spread", nil},
		{"every hash collides", func(string) uint64 { return 0 }},
		{"first byte", func(s string) uint64 {
			if s == "" {
				return 1
			}
			return uint64(s[0])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			ctx := context.Background()
			r := rand.New(rand.NewPCG(7, 8))
			m := NewMemoryStore()
			m.events.hash = tc.hash
			var model eventModel
			at := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
			for step := range 400 {
				switch op := r.IntN(8); {
				case op < 5:
					var batch []Event
					same := r.IntN(4) == 0
					id := strs[r.IntN(len(strs))]
					for range 1 + r.IntN(5) {
						if !same {
							id = strs[r.IntN(len(strs))]
						}
						at = at.Add(time.Second)
						batch = append(batch, Event{ID: id, Type: EventKeyShared, Time: at,
							KeyID: strs[r.IntN(len(strs))], OrganizationID: strs[r.IntN(3)]})
					}
					is.NoErr(m.AppendEvents(ctx, batch))
					model.append(batch)
				case op < 6:
					keep := r.IntN(6)
					got, err := m.PruneEvents(ctx, time.Time{}, keep)
					is.NoErr(err)
					is.Equal(got, model.prune(time.Time{}, keep)) // deleted count
				default:
					org := strs[r.IntN(3)]
					q := EventQuery{KeyID: []string{"", strs[r.IntN(len(strs))]}[r.IntN(2)], Limit: r.IntN(3)}
					got, err := m.Events(ctx, org, q)
					is.NoErr(err)
					is.Equal(got, model.events(org, q))
				}
				if step%20 == 0 {
					checkEventIndexes(t, &m.events)
					all, err := m.EventsAfter(ctx, 0, 0)
					is.NoErr(err)
					is.Equal(len(all), len(model.list))
					for i := range all {
						is.Equal(all[i], model.list[i])
					}
				}
			}
		})
	}
}

// TestEventLogPruneOutOfOrder: a prune that deletes events from the middle
// of the log (older than a kept event before them, as when the Service
// appends an owner action's event before a validation's of a moment
// earlier) answers as eventModel does without building the log again: it
// allocates next to nothing for 100,000 events (a rebuild allocated a new
// arena and new tables, 30 MB, and took 0.65 s at a million events with
// the log locked), and the kept events' strings stay where they were;
// when the deleted strings outweigh the kept ones, the kept ones move to
// a new arena that holds nothing else.
func TestEventLogPruneOutOfOrder(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	t.Run("a few in the middle", func(t *testing.T) {
		is := is.New(t)
		const n = 100_000
		m := NewMemoryStore()
		var model eventModel
		batch := make([]Event, 0, 1000)
		for i := 0; i < n; i += len(batch) {
			batch = batch[:0]
			for j := i; j < i+1000; j++ {
				e := createdEvent(fmt.Sprint("org-", j%3), j)
				if j%10_000 == 5000 {
					e.Time = base.Add(-time.Hour) // appended late
				}
				batch = append(batch, e)
			}
			is.NoErr(m.AppendEvents(ctx, batch))
			model.append(batch)
		}
		kept, err := m.EventsAfter(ctx, n/2, 1)
		is.NoErr(err)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		deleted, err := m.PruneEvents(ctx, base.Add(100*time.Millisecond), 0)
		runtime.ReadMemStats(&after)
		is.NoErr(err)
		is.Equal(deleted, model.prune(base.Add(100*time.Millisecond), 0)) // 100 at the front, 10 in the middle
		is.Equal(deleted, 110)
		t.Logf("the prune allocated %d bytes", after.TotalAlloc-before.TotalAlloc)
		is.True(after.TotalAlloc-before.TotalAlloc < 1<<20) // no new arena nor tables
		checkEventIndexes(t, &m.events)
		all, err := m.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(all, model.list)
		still, err := m.EventsAfter(ctx, n/2, 1)
		is.NoErr(err)
		is.Equal(unsafe.StringData(still[0].ID), unsafe.StringData(kept[0].ID)) // the same bytes: not copied
		for _, org := range []string{"org-0", "org-1", "org-2"} {
			got, err := m.Events(ctx, org, EventQuery{Limit: 3})
			is.NoErr(err)
			is.Equal(got, model.events(org, EventQuery{Limit: 3}))
		}
		for _, e := range model.list[:50] {
			got, err := m.Events(ctx, e.OrganizationID, EventQuery{KeyID: e.KeyID})
			is.NoErr(err)
			is.Equal(got, []Event{e})
		}
	})
	t.Run("most of the strings", func(t *testing.T) {
		is := is.New(t)
		m := NewMemoryStore()
		var model eventModel
		big := strings.Repeat("i", 100<<10)
		for i := range 200 {
			e := createdEvent("org-1", i)
			e.KeyID, e.InstanceID = fmt.Sprint("key-", i%7), big
			if i%4 != 0 {
				e.Time = base.Add(-time.Hour) // 3 of 4 old, all but the first after a kept one
			}
			is.NoErr(m.AppendEvents(ctx, []Event{e}))
			model.append([]Event{e})
		}
		deleted, err := m.PruneEvents(ctx, base, 0)
		is.NoErr(err)
		is.Equal(deleted, model.prune(base, 0))
		is.Equal(deleted, 150)
		checkEventIndexes(t, &m.events)
		is.Equal(m.events.strs.bytes(), m.events.held) // moved: the arena holds the kept strings only
		all, err := m.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(all, model.list)
		for k := range 7 {
			q := EventQuery{KeyID: fmt.Sprint("key-", k)}
			got, err := m.Events(ctx, "org-1", q)
			is.NoErr(err)
			is.Equal(got, model.events("org-1", q))
		}
	})
}

// BenchmarkEventLogPruneOutOfOrder is a prune of a log of 1,000,000
// key.created events that deletes one event from its end (appended with a
// Time an hour before the others) and a few from its front: what the
// Service's pruner does when its bound falls between an owner action's
// event and a validation's of a moment earlier appended after it.
func BenchmarkEventLogPruneOutOfOrder(b *testing.B) {
	ctx := context.Background()
	m := NewMemoryStore()
	appendCreated(b, m, 1_000_000)
	base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	i := 0
	for b.Loop() {
		late := createdEvent("org-1", 0)
		late.Time = base.Add(-time.Hour)
		if err := m.AppendEvents(ctx, []Event{late, createdEvent("org-1", 2_000_000+i)}); err != nil {
			b.Fatal(err)
		}
		i++
		if n, err := m.PruneEvents(ctx, base.Add(time.Duration(i)*time.Millisecond), 0); err != nil || n != 2 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkEventLogKeyPages pages through the 100,000 events of one key
// (in a log of 200,000, the key's between others'), 51 at a time with the
// Seq of each page's last event as the next one's Before, as the Service
// pages GET /events?keyId=: one iteration is every page.
func BenchmarkEventLogKeyPages(b *testing.B) {
	ctx := context.Background()
	m := NewMemoryStore()
	base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	const n = 100_000
	for i := 0; i < n; i += 1000 {
		batch := make([]Event, 0, 2000)
		for j := i; j < i+1000; j++ {
			at := base.Add(time.Duration(j) * time.Millisecond)
			batch = append(batch, Event{ID: fmt.Sprint("hot-", j), Type: EventKeyShared, Time: at, KeyID: "hot", OrganizationID: "org-1"},
				Event{ID: fmt.Sprint("other-", j), Type: EventKeyCreated, Time: at, KeyID: fmt.Sprint("key-", j), OrganizationID: "org-1"})
		}
		if err := m.AppendEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		q, seen := EventQuery{KeyID: "hot", Limit: 51}, 0
		for {
			page, err := m.Events(ctx, "org-1", q)
			if err != nil {
				b.Fatal(err)
			}
			seen += min(len(page), 50)
			if len(page) < 51 {
				break
			}
			q.Before = page[49].Seq
		}
		if seen != n {
			b.Fatal(seen)
		}
	}
}
