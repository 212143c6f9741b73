package licensing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/licensekit/licensing/internal/bulk"
)

// memEvents is a MemoryStore's event log, held so that the garbage
// collector has close to nothing to look at per event (a million events
// are a few hundred heap objects, none of which it scans): every event is
// a record without pointers (memEvent) in one slice, Seq ascending, whose
// strings are one reference into a string arena (memarena.go). Its
// indexes hold no pointer per event either:
//   - ids: a hash of the event's ID to its Seq (seqIndex). A lookup
//     compares the record's ID, so a hash collision is no match; the
//     second of two ids with one hash goes to collided: results stay exact.
//   - heads: a hash of the key id to the Seq of the key's newest event
//     (seqIndex); each record holds the Seq of the previous event of its
//     key id's hash (a chain, newest first; two keys whose ids collide
//     share one, and the records' key ids tell them apart).
//   - byOrg: an organization's Seqs, ascending (few organizations; the
//     slices hold no pointer).
//
// It is held in memory whole, about 300 bytes an event (284 with a
// million key.created events, measured by BenchmarkEventLogGC): the
// Service's retention (Config.EventRetention, Config.EventRetentionCount)
// bounds it.
type memEvents struct {
	mu        sync.RWMutex
	recs      []memEvent // Seq ascending
	strs      stringArena
	ids       seqIndex            // hash of an ID: the Seq of its event
	collided  map[string]uint64   // ids whose hash ids holds for another id: their Seq
	heads     seqIndex            // hash of a key id: the Seq of its newest event
	byOrg     map[string][]uint64 // Seqs ascending
	unordered bool                // some record's Time is before its predecessor's
	held      int                 // the arena bytes of the records' strings (the rest is released or garbage)
	lastSeq   uint64              // the greatest Seq ever given, pruned or not

	hash func(string) uint64 // nil: maphash with eventSeed (tests force collisions)
}

// memEvent is an Event as the log holds it, without a pointer. Times are
// Unix seconds and nanoseconds, which give back a UTC time.Time exactly (the
// zero time included).
type memEvent struct {
	seq     uint64
	prevKey uint64 // the Seq of the previous event of the key id's hash; 0: none
	sec     int64  // Time
	expSec  int64  // ExpiresAt
	count   int64  // InstanceCount
	maxInst int64  // MaxInstances
	nsec    uint32
	expNsec uint32
	strs    arenaRef // the strings, written by stringArena.addFields in field order
}

// The strings of an event, in the order they are written in the arena: the
// ones the queries filter on first.
const (
	fieldID = iota
	fieldType
	fieldOrg
	fieldKey
	fieldMasked
	fieldUser
	fieldOutcome
	fieldRotatedTo
	fieldInstance
	eventFields
)

// eventSeed seeds the hashes of the log's indexes, differently in each
// process.
var eventSeed = maphash.MakeSeed()

var _ EventLog = (*MemoryStore)(nil)

func (l *memEvents) init() {
	if l.byOrg == nil {
		l.collided, l.byOrg = map[string]uint64{}, map[string][]uint64{}
	}
}

func (l *memEvents) hashOf(s string) uint64 {
	if l.hash != nil {
		return l.hash(s)
	}
	return maphash.String(eventSeed, s)
}

// errEventFields refuses an event the log cannot keep.
var errEventFields = errors.New("licensing: append events: an event needs an ID, a Type and a Time")

// fresh returns the events of events whose ids the log does not hold (the
// first of each id within events too), as the log would store them, with
// the Seqs they would get; it stores nothing. Callers hold l.mu.
func (l *memEvents) freshLocked(events []Event) ([]Event, error) {
	out := make([]Event, 0, len(events))
	seen := map[string]bool{}
	next := l.lastSeq
	for _, e := range events {
		if e.ID == "" || e.Type == "" || e.Time.IsZero() {
			return nil, errEventFields
		}
		if _, ok := l.seqOf(e.ID); ok || seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		next++
		e.Seq = next
		e.Time = e.Time.UTC()
		if !e.ExpiresAt.IsZero() {
			e.ExpiresAt = e.ExpiresAt.UTC()
		}
		out = append(out, e)
	}
	return out, nil
}

// seqOf returns the Seq of the event with ID id: a hash lookup and the
// reading of one record's ID. Callers hold l.mu.
func (l *memEvents) seqOf(id string) (uint64, bool) {
	if seq, ok := l.ids.get(l.hashOf(id)); ok {
		if i, ok := l.at(seq); ok && l.field(i, fieldID) == id {
			return seq, true
		}
	}
	seq, ok := l.collided[id]
	return seq, ok
}

// loadLocked stores events that carry their Seqs, each above the last.
func (l *memEvents) loadLocked(events []Event) error {
	l.init()
	for i := range events {
		e := &events[i]
		if e.Seq <= l.lastSeq {
			return fmt.Errorf("licensing: event %s has Seq %d, not above the log's %d", e.ID, e.Seq, l.lastSeq)
		}
		l.add(e)
	}
	return nil
}

// add stores e, whose Seq is above the last. Callers hold l.mu and have
// called init.
func (l *memEvents) add(e *Event) {
	t, exp := e.Time.UTC(), e.ExpiresAt.UTC()
	r := memEvent{seq: e.Seq, sec: t.Unix(), nsec: uint32(t.Nanosecond()), expSec: exp.Unix(), expNsec: uint32(exp.Nanosecond()),
		count: int64(e.InstanceCount), maxInst: int64(e.MaxInstances),
		strs: l.strs.addFields(e.ID, string(e.Type), e.OrganizationID, e.KeyID, e.MaskedKey, e.UserID, string(e.Outcome), e.RotatedTo, e.InstanceID)}
	if e.KeyID != "" {
		h := l.hashOf(e.KeyID)
		r.prevKey, _ = l.heads.get(h)
		l.heads.set(h, e.Seq)
	}
	if n := len(l.recs); n > 0 && r.timeBefore(l.recs[n-1].sec, l.recs[n-1].nsec) {
		l.unordered = true
	}
	l.held += int(r.strs.n)
	l.recs = append(l.recs, r)
	if h := l.hashOf(e.ID); l.hasID(h) {
		l.collided[strings.Clone(e.ID)] = e.Seq
	} else {
		l.ids.set(h, e.Seq)
	}
	if seqs, ok := l.byOrg[e.OrganizationID]; ok {
		l.byOrg[e.OrganizationID] = append(seqs, e.Seq)
	} else {
		l.byOrg[strings.Clone(e.OrganizationID)] = []uint64{e.Seq}
	}
	l.lastSeq = e.Seq
}

func (l *memEvents) hasID(h uint64) bool {
	_, ok := l.ids.get(h)
	return ok
}

// timeBefore reports whether r's Time is before sec, nsec (Unix).
func (r *memEvent) timeBefore(sec int64, nsec uint32) bool {
	return r.sec < sec || r.sec == sec && r.nsec < nsec
}

// at returns the index in l.recs of the event with Seq seq: one look when
// the Seqs from the first record on have no gap (the log's own appends),
// else a binary search. Callers hold l.mu.
func (l *memEvents) at(seq uint64) (int, bool) {
	if len(l.recs) == 0 || seq < l.recs[0].seq {
		return 0, false
	}
	if d := seq - l.recs[0].seq; d < uint64(len(l.recs)) && l.recs[d].seq == seq {
		return int(d), true
	}
	return slices.BinarySearchFunc(l.recs, seq, func(r memEvent, s uint64) int { return cmp.Compare(r.seq, s) })
}

// field returns string f (fieldID...) of the event at index i.
func (l *memEvents) field(i, f int) string {
	var out [eventFields]string
	l.strs.fields(l.recs[i].strs, out[:f+1])
	return out[f]
}

// event returns the event at index i, whose strings share the arena's
// memory.
func (l *memEvents) event(i int) Event {
	return eventOf(&l.strs, &l.recs[i])
}

func eventOf(a *stringArena, r *memEvent) Event {
	var f [eventFields]string
	a.fields(r.strs, f[:])
	return Event{ID: f[fieldID], Seq: r.seq, Type: EventType(f[fieldType]), Time: time.Unix(r.sec, int64(r.nsec)).UTC(),
		KeyID: f[fieldKey], OrganizationID: f[fieldOrg], MaskedKey: f[fieldMasked], UserID: f[fieldUser],
		Outcome: Outcome(f[fieldOutcome]), InstanceCount: int(r.count), ExpiresAt: time.Unix(r.expSec, int64(r.expNsec)).UTC(),
		RotatedTo: f[fieldRotatedTo], InstanceID: f[fieldInstance], MaxInstances: int(r.maxInst)}
}

// AppendEvents implements EventLog: an event costs a hash lookup of its ID
// and its record's writing.
func (m *MemoryStore) AppendEvents(ctx context.Context, events []Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l := &m.events
	l.mu.Lock()
	defer l.mu.Unlock()
	fresh, err := l.freshLocked(events)
	if err != nil {
		return err
	}
	return l.loadLocked(fresh)
}

// Events implements EventLog. An organization's page costs a binary search
// for q.Before and the events it looks at (with a Type, those of the
// organization up to the page's end), each found in one look (at). A key's
// page walks the key's chain: from the event whose Seq is q.Before when it
// is one of the key's (as the cursor of the Service's next page is), at a
// cost of the events it looks at; else from the key's newest event, at a
// cost of the key's events newer than q.Before too.
func (m *MemoryStore) Events(ctx context.Context, orgID string, q EventQuery) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &m.events
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := []Event{}
	full := func() bool { return q.Limit > 0 && len(out) >= q.Limit }
	if q.KeyID != "" {
		var f [fieldKey + 1]string
		seq, ok := l.heads.get(l.hashOf(q.KeyID))
		if i, found := l.at(q.Before); found && q.Before > 0 && l.field(i, fieldKey) == q.KeyID {
			seq, ok = l.recs[i].prevKey, l.recs[i].prevKey != 0 // the next page's cursor: an event of the key, whose chain goes on below it
		}
		for ok && !full() {
			i, found := l.at(seq)
			if !found {
				break // pruned, and so are the older ones (PruneEvents keeps no hole in a chain)
			}
			r := &l.recs[i]
			if q.Before == 0 || r.seq < q.Before {
				l.strs.fields(r.strs, f[:])
				if f[fieldKey] == q.KeyID && f[fieldOrg] == orgID && (q.Type == "" || f[fieldType] == string(q.Type)) {
					out = append(out, l.event(i))
				}
			}
			seq, ok = r.prevKey, r.prevKey != 0
		}
		return out, nil
	}
	seqs := l.byOrg[orgID]
	end := len(seqs)
	if q.Before > 0 {
		end, _ = slices.BinarySearch(seqs, q.Before)
	}
	for k := end - 1; k >= 0 && !full(); k-- {
		i, ok := l.at(seqs[k])
		if !ok || q.Type != "" && l.field(i, fieldType) != string(q.Type) {
			continue
		}
		out = append(out, l.event(i))
	}
	return out, nil
}

// EventsAfter implements EventLog: a binary search, and the events
// returned.
func (m *MemoryStore) EventsAfter(ctx context.Context, after uint64, limit int) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if after == math.MaxUint64 {
		return []Event{}, nil // no Seq above it (after+1 would be 0: every event)
	}
	l := &m.events
	l.mu.RLock()
	defer l.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(l.recs, after+1, func(r memEvent, s uint64) int { return cmp.Compare(r.seq, s) })
	n := len(l.recs) - i
	if limit > 0 && limit < n {
		n = limit
	}
	out := make([]Event, n)
	for k := range out {
		out[k] = l.event(i + k)
	}
	return out, nil
}

// EventOps returns the memory store's event log operations to the stores of
// this module (package filestore keeps its events in a MemoryStore, and
// replays and snapshots them through these). Like BulkOps, it is unusable
// outside this module.
func (m *MemoryStore) EventOps(bulk.Capability) bulk.EventOps[Event] { return memEventOps{&m.events} }

type memEventOps struct{ l *memEvents }

func (o memEventOps) Lock()   { o.l.mu.Lock() }
func (o memEventOps) Unlock() { o.l.mu.Unlock() }

func (o memEventOps) FreshLocked(events []Event) ([]Event, error) { return o.l.freshLocked(events) }
func (o memEventOps) LoadLocked(events []Event) error             { return o.l.loadLocked(events) }
func (o memEventOps) PruneLocked(before time.Time, keep int) int {
	return o.l.pruneLocked(before, keep)
}
func (o memEventOps) LastSeq() uint64 { return o.l.lastSeq }
func (o memEventOps) SetLastSeq(n uint64) {
	if n > o.l.lastSeq {
		o.l.lastSeq = n
	}
}
func (o memEventOps) Each(fn func(Event) bool) {
	for i := range o.l.recs {
		if !fn(o.l.event(i)) {
			return
		}
	}
}
func (o memEventOps) Len() int { return len(o.l.recs) }
