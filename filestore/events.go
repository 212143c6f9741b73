package filestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/licensekit/licensing"
)

// The event log (licensing.EventLog) is held in the store's MemoryStore
// and made durable as records 20-29: an append is one recEvents record
// holding the new events with their Seqs, fsynced before AppendEvents
// returns; a prune is a recPruneEvents record of its arguments, which
// replay applies to the same events with the same result; a snapshot holds
// the events (recEvents) and the greatest Seq ever given (recEventSeq), so
// a Seq is never given twice, also after a prune, a compaction and a
// restart. Releases before the event log refuse to open a store that has
// these records (an unknown record type).

var _ licensing.EventLog = (*Store)(nil)

// eventChunk and eventRecordBytes bound one recEvents record: at most
// eventChunk events, and no more events once it holds eventRecordBytes
// (an event alone may be larger, up to maxEventBytes), so that a record is
// well under maxRecordBytes, which the log refuses to read.
const (
	eventChunk       = 1024
	eventRecordBytes = 4 << 20
	maxEventBytes    = maxRecordBytes - 1024
)

// eventBytes bounds the bytes of ev in a recEvents record: its strings,
// their lengths, its numbers and times (10 bytes each at most).
func eventBytes(ev *licensing.Event) int {
	return len(ev.ID) + len(ev.Type) + len(ev.KeyID) + len(ev.OrganizationID) + len(ev.MaskedKey) + len(ev.UserID) +
		len(ev.Outcome) + len(ev.RotatedTo) + len(ev.InstanceID) + 15*10
}

// eventRecords cuts events into the runs that one recEvents record each
// holds (eventChunk, eventRecordBytes), and calls write with each.
func eventRecords(events []licensing.Event, write func([]licensing.Event)) {
	start, size := 0, 0
	for i := range events {
		n := eventBytes(&events[i])
		if i > start && (i-start == eventChunk || size+n > eventRecordBytes) {
			write(events[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(events) {
		write(events[start:])
	}
}

func encodeEvents(e *encoder, events []licensing.Event) {
	e.byte(recEvents)
	e.uvarint(uint64(len(events)))
	for _, ev := range events {
		e.uvarint(ev.Seq)
		e.str(ev.ID)
		e.str(string(ev.Type))
		e.time(ev.Time)
		e.str(ev.KeyID)
		e.str(ev.OrganizationID)
		e.str(ev.MaskedKey)
		e.str(ev.UserID)
		e.str(string(ev.Outcome))
		e.uvarint(uint64(ev.InstanceCount))
		e.time(ev.ExpiresAt)
		e.str(ev.RotatedTo)
		e.str(ev.InstanceID)
		e.uvarint(uint64(ev.MaxInstances))
	}
}

func decodeEvents(d *decoder) []licensing.Event {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.fail()
		return nil
	}
	events := make([]licensing.Event, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		var ev licensing.Event
		ev.Seq = d.uvarint()
		ev.ID = d.str()
		ev.Type = licensing.EventType(d.str())
		ev.Time = d.time()
		ev.KeyID = d.str()
		ev.OrganizationID = d.str()
		ev.MaskedKey = d.str()
		ev.UserID = d.str()
		ev.Outcome = licensing.Outcome(d.str())
		ev.InstanceCount = int(d.uvarint())
		ev.ExpiresAt = d.time()
		ev.RotatedTo = d.str()
		ev.InstanceID = d.str()
		ev.MaxInstances = int(d.uvarint())
		events = append(events, ev)
	}
	return events
}

func encodePruneEvents(e *encoder, before time.Time, keep int) {
	e.byte(recPruneEvents)
	e.time(before)
	e.uvarint(uint64(keep))
}

// AppendEvents implements licensing.EventLog: the new events are fsynced
// before it returns. An event whose Time or ExpiresAt is not after
// 1970-01-01 and before 2262-04-11 (licensing.ValidExpiry: what the log
// keeps as Unix nanoseconds) is refused with its batch. Appends are serialized, so the log holds them in Seq
// order; appends that arrive while one is being written wait, and the next
// of them writes them all as one record and one fsync (shared with the
// other writes of the moment by the log's group commit).
func (s *Store) AppendEvents(ctx context.Context, events []licensing.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.writable(); err != nil {
		return err
	}
	for _, ev := range events {
		if ev.ID == "" || ev.Type == "" || ev.Time.IsZero() {
			return errEventFields // refused before it can fail the appends written with it
		}
		if n := eventBytes(&ev); n > maxEventBytes {
			return fmt.Errorf("filestore: append events: event %s has %d bytes of strings: the file store keeps an event of at most %d bytes; shorten its fields", ev.ID, n, maxEventBytes)
		}
		if !licensing.ValidExpiry(ev.Time) || !licensing.ValidExpiry(ev.ExpiresAt) {
			return fmt.Errorf("filestore: append events: event %s has Time %s and ExpiresAt %s: the file store keeps event times after 1970-01-01 and before 2262-04-11 (UTC) as Unix nanoseconds; give times in that range",
				ev.ID, ev.Time.UTC().Format(time.RFC3339Nano), ev.ExpiresAt.UTC().Format(time.RFC3339Nano))
		}
	}
	req := &eventAppend{events: events, done: make(chan error, 1)}
	s.evmu.Lock()
	s.evPending = append(s.evPending, req)
	s.evmu.Unlock()

	s.apply.RLock()
	defer s.apply.RUnlock()
	s.events.Lock()
	defer s.events.Unlock()
	select {
	case err := <-req.done: // written by the append before this one
		return err
	default:
	}
	s.evmu.Lock()
	reqs := s.evPending
	s.evPending = nil
	s.evmu.Unlock()
	var all []licensing.Event
	for _, r := range reqs {
		all = append(all, r.events...)
	}
	err := s.appendEventsLocked(all)
	for _, r := range reqs {
		r.done <- err
	}
	return <-req.done
}

var errEventFields = errors.New("filestore: append events: an event needs an ID, a Type and a Time")

// eventAppend is one AppendEvents call waiting to be written.
type eventAppend struct {
	events []licensing.Event
	done   chan error
}

// appendEventsLocked writes the events the log does not hold yet and
// applies them. Callers hold s.apply shared and s.events.
func (s *Store) appendEventsLocked(events []licensing.Event) error {
	if err := s.writable(); err != nil {
		return err
	}
	fresh, err := s.events.FreshLocked(events)
	if err != nil || len(fresh) == 0 {
		return err
	}
	var payloads [][]byte
	eventRecords(fresh, func(run []licensing.Event) {
		e := &encoder{}
		encodeEvents(e, run)
		payloads = append(payloads, e.b)
		s.liveSize.Add(int64(len(e.b) + frameSize))
	})
	if err := s.commit(payloads...); err != nil {
		return err
	}
	return s.events.LoadLocked(fresh)
}

// Events implements licensing.EventLog from memory.
func (s *Store) Events(ctx context.Context, orgID string, q licensing.EventQuery) ([]licensing.Event, error) {
	return s.mem.Events(ctx, orgID, q)
}

// EventsAfter implements licensing.EventLog from memory.
func (s *Store) EventsAfter(ctx context.Context, after uint64, limit int) ([]licensing.Event, error) {
	return s.mem.EventsAfter(ctx, after, limit)
}

// ExpiringKeys implements licensing.EventLog from memory.
func (s *Store) ExpiringKeys(ctx context.Context, until, afterExpiry time.Time, afterID string, limit int) ([]licensing.Key, error) {
	return s.mem.ExpiringKeys(ctx, until, afterExpiry, afterID, limit)
}

// PruneEvents implements licensing.EventLog. Memory is pruned first and
// the record written only when something was deleted; should the write
// fail (the store then refuses writes), a restart brings the pruned events
// back until the next prune. A before beyond the times the record keeps
// (Unix nanoseconds) is written as one that deletes the same events
// (pruneBound), so that replay deletes them too.
func (s *Store) PruneEvents(ctx context.Context, before time.Time, keep int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.writable(); err != nil {
		return 0, err
	}
	s.apply.RLock()
	defer s.apply.RUnlock()
	s.events.Lock()
	defer s.events.Unlock()
	before = pruneBound(before)
	n := s.events.PruneLocked(before, keep)
	if n == 0 {
		return 0, nil
	}
	e := &encoder{}
	encodePruneEvents(e, before, keep)
	if err := s.commit(e.b); err != nil {
		return 0, err
	}
	return n, nil
}

// The times a prune record can hold: Unix nanoseconds, 0 for none.
var (
	pruneFirst, pruneLast = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
	unixEpoch             = time.Unix(0, 0)
)

// pruneBound returns a time that the prune record keeps exactly and that
// deletes the same events as before: a time before 1677 or after 2262 is
// the first or last Unix nanosecond (the log holds no event beyond them),
// and the Unix epoch, which the record would read back as no bound, one
// nanosecond after it (the log holds no event at the epoch: the codec
// reads it back as no time).
func pruneBound(before time.Time) time.Time {
	switch {
	case before.IsZero():
		return before
	case before.Before(pruneFirst):
		return pruneFirst
	case before.After(pruneLast):
		return pruneLast
	case before.Equal(unixEpoch):
		return unixEpoch.Add(1)
	}
	return before
}

// replayEvents applies an event record of the log or a snapshot.
func (s *Store) replayEvents(p []byte) error {
	d := newDecoder(p)
	s.events.Lock()
	defer s.events.Unlock()
	switch p[0] {
	case recEvents:
		events := decodeEvents(d)
		if d.err != nil {
			return d.err
		}
		return s.events.LoadLocked(cloneEvents(events))
	case recEventSeq:
		n := d.uvarint()
		if d.err != nil {
			return d.err
		}
		s.events.SetLastSeq(n)
	case recPruneEvents:
		before := d.time()
		keep := d.uvarint()
		if d.err != nil {
			return d.err
		}
		s.events.PruneLocked(before, int(keep))
	}
	return nil
}

var clone = strings.Clone

// cloneEvents copies the strings of decoded events, which point into the
// record's payload, so that the payload is not kept alive by the few
// events left of it after pruning.
func cloneEvents(events []licensing.Event) []licensing.Event {
	for i := range events {
		ev := &events[i]
		ev.ID, ev.KeyID, ev.OrganizationID = clone(ev.ID), clone(ev.KeyID), clone(ev.OrganizationID)
		ev.MaskedKey, ev.UserID, ev.RotatedTo, ev.InstanceID = clone(ev.MaskedKey), clone(ev.UserID), clone(ev.RotatedTo), clone(ev.InstanceID)
		ev.Type, ev.Outcome = licensing.EventType(clone(string(ev.Type))), licensing.Outcome(clone(string(ev.Outcome)))
	}
	return events
}

// writeSnapshotEvents appends the event log to a snapshot being written:
// the events, then the greatest Seq. Callers hold s.apply exclusively.
func (s *Store) writeSnapshotEvents(write func(payload []byte)) {
	s.events.Lock()
	defer s.events.Unlock()
	batch := make([]licensing.Event, 0, eventChunk)
	flush := func() {
		eventRecords(batch, func(run []licensing.Event) {
			e := &encoder{}
			encodeEvents(e, run)
			write(e.b)
		})
		batch = batch[:0]
	}
	size := 0
	s.events.Each(func(ev licensing.Event) bool {
		batch = append(batch, ev)
		if size += eventBytes(&ev); len(batch) == eventChunk || size >= eventRecordBytes {
			flush()
			size = 0
		}
		return true
	})
	if len(batch) > 0 {
		flush()
	}
	e := &encoder{}
	e.byte(recEventSeq)
	e.uvarint(s.events.LastSeq())
	write(e.b)
}
