package licensing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/licensekit/licensing/internal/bulk"
)

// memEvents is a MemoryStore's event log: every event in Seq order, and
// indexes by id, by organization and by key (Seqs, ascending). It is held
// in memory whole, about 500 bytes an event (measured with key.created events): the Service's retention
// (Config.EventRetention, Config.EventRetentionCount) bounds it.
type memEvents struct {
	mu      sync.RWMutex
	list    []Event // Seq ascending
	ids     map[string]uint64
	byOrg   map[string][]uint64
	byKey   map[string][]uint64
	lastSeq uint64 // the greatest Seq ever given, pruned or not
}

var _ EventLog = (*MemoryStore)(nil)

func (l *memEvents) init() {
	if l.ids == nil {
		l.ids, l.byOrg, l.byKey = map[string]uint64{}, map[string][]uint64{}, map[string][]uint64{}
	}
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
		if _, ok := l.ids[e.ID]; ok || seen[e.ID] {
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

// loadLocked stores events that carry their Seqs, each above the last.
func (l *memEvents) loadLocked(events []Event) error {
	l.init()
	for _, e := range events {
		if e.Seq <= l.lastSeq {
			return fmt.Errorf("licensing: event %s has Seq %d, not above the log's %d", e.ID, e.Seq, l.lastSeq)
		}
		l.list = append(l.list, e)
		l.ids[e.ID] = e.Seq
		l.byOrg[e.OrganizationID] = append(l.byOrg[e.OrganizationID], e.Seq)
		if e.KeyID != "" {
			l.byKey[e.KeyID] = append(l.byKey[e.KeyID], e.Seq)
		}
		l.lastSeq = e.Seq
	}
	return nil
}

// at returns the event with Seq seq. Callers hold l.mu.
func (l *memEvents) at(seq uint64) (Event, bool) {
	i, ok := slices.BinarySearchFunc(l.list, seq, func(e Event, s uint64) int { return cmp.Compare(e.Seq, s) })
	if !ok {
		return Event{}, false
	}
	return l.list[i], true
}

// AppendEvents implements EventLog.
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

// Events implements EventLog: a page costs a binary search and the events
// it looks at (with a Type, those of the organization or key up to the
// page's end).
func (m *MemoryStore) Events(ctx context.Context, orgID string, q EventQuery) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &m.events
	l.mu.RLock()
	defer l.mu.RUnlock()
	seqs := l.byOrg[orgID]
	if q.KeyID != "" {
		seqs = l.byKey[q.KeyID]
	}
	end := len(seqs)
	if q.Before > 0 {
		end, _ = slices.BinarySearch(seqs, q.Before)
	}
	out := []Event{}
	for i := end - 1; i >= 0 && (q.Limit <= 0 || len(out) < q.Limit); i-- {
		e, ok := l.at(seqs[i])
		if !ok || e.OrganizationID != orgID || (q.Type != "" && e.Type != q.Type) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// EventsAfter implements EventLog.
func (m *MemoryStore) EventsAfter(ctx context.Context, after uint64, limit int) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &m.events
	l.mu.RLock()
	defer l.mu.RUnlock()
	i, _ := slices.BinarySearchFunc(l.list, after+1, func(e Event, s uint64) int { return cmp.Compare(e.Seq, s) })
	n := len(l.list) - i
	if limit > 0 && limit < n {
		n = limit
	}
	return slices.Clone(l.list[i : i+n]), nil
}

// PruneEvents implements EventLog. It rebuilds the indexes when it deletes
// anything: a cost in the number of events, paid by the Service's pruner.
func (m *MemoryStore) PruneEvents(ctx context.Context, before time.Time, keep int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l := &m.events
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pruneLocked(before, keep), nil
}

func (l *memEvents) pruneLocked(before time.Time, keep int) int {
	list := l.list
	if keep > 0 && len(list) > keep {
		list = list[len(list)-keep:]
	}
	kept := make([]Event, 0, len(list))
	for _, e := range list {
		if before.IsZero() || !e.Time.Before(before) {
			kept = append(kept, e)
		}
	}
	deleted := len(l.list) - len(kept)
	if deleted == 0 {
		return 0
	}
	last := l.lastSeq
	l.list, l.ids, l.byOrg, l.byKey = nil, nil, nil, nil
	l.init()
	l.lastSeq = 0
	l.loadLocked(kept) // in Seq order: cannot fail
	l.lastSeq = last   // Seqs are never reused
	return deleted
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
	for _, e := range o.l.list {
		if !fn(e) {
			return
		}
	}
}
func (o memEventOps) Len() int { return len(o.l.list) }
