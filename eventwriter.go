package licensing

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Events reach the store's EventLog (when Config.Store implements it) in
// two ways. Owner actions are appended synchronously, before the call that
// made them returns. Validation outcomes are appended off the request path
// by an eventWriter: a queue of at most eventQueueSize events and one
// goroutine writing batches, behind an eventLimiter that keeps at most one
// event per key and type per eventLimitEvery. Successful validations, and
// failures that name no key (unknown or malformed keys), are not logged.

// eventLimitEvery is how often the log takes a validation outcome of one
// type for one key (key.activated, key.shared, key.seat_limit_reached,
// key.expired, key.validation_failed): the first in each period is kept,
// the others are not logged (Config.OnEvent still sees them).
const eventLimitEvery = 10 * time.Minute

// eventLimiterSize bounds the keys and types the limiter remembers.
const eventLimiterSize = 100_000

// Event log defaults (see Config).
const (
	defaultEventRetention      = 90 * 24 * time.Hour
	defaultEventRetentionCount = 1_000_000
	defaultExpiryReminder      = 14 * 24 * time.Hour
	eventPruneEvery            = 10 * time.Minute // how often the pruner runs
	reminderEvery              = time.Minute      // how often the reminder scan runs
)

// eventNamespace makes the deterministic ids of the events every server
// sends alike (key.expiring, key.activated): UUIDs of version 5 in it.
var eventNamespace = uuid.MustParse("6f6c8a3e-5b0c-4b5e-9d7e-2a9c1e4f7b10")

// newEventID returns a fresh event id, a UUIDv7.
func newEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString() // no time-ordered id: a random one is still unique
	}
	return id.String()
}

// derivedEventID returns the id every server gives the event of typ about
// keyID and what (an expiry, say), so that a log keeps it once.
func derivedEventID(typ EventType, keyID, what string) string {
	return uuid.NewSHA1(eventNamespace, []byte(string(typ)+"\x00"+keyID+"\x00"+what)).String()
}

// loggedOutcome reports whether a validate-route event goes to the event
// log: those about a key, other than successes and failures other than a
// revoked key's.
func loggedOutcome(e *Event) bool {
	switch e.Type {
	case EventKeyValidated:
		return false
	case EventValidationFailed:
		return e.KeyID != "" && e.Outcome == OutcomeRevoked
	}
	return e.KeyID != ""
}

// eventLimiter lets through one event per key and type per period. It
// remembers the keys and types it let through in two generations of at
// most half its bound each: when the current one is full it becomes the
// previous one and the previous one is forgotten. So it holds at most its
// bound, always remembers the last half of it (a flood from more keys than the bound does not
// let each key's events through again), and costs the same for every call
// (no scan of what it holds on the validate route).
type eventLimiter struct {
	mu        sync.Mutex
	cur, prev map[eventLimitKey]time.Time
	every     time.Duration
	half      int
}

type eventLimitKey struct {
	keyID string
	typ   EventType
}

func newEventLimiter(every time.Duration, bound int) *eventLimiter {
	return &eventLimiter{cur: map[eventLimitKey]time.Time{}, prev: map[eventLimitKey]time.Time{},
		every: every, half: max(bound/2, 1)}
}

// allow reports whether an event of typ about keyID at now may be logged,
// and remembers it when it may.
func (l *eventLimiter) allow(keyID string, typ EventType, now time.Time) bool {
	k := eventLimitKey{keyID, typ}
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := func(t time.Time, ok bool) bool { return ok && now.Sub(t) < l.every && !now.Before(t) }
	if t, ok := l.cur[k]; recent(t, ok) {
		return false
	}
	if t, ok := l.prev[k]; recent(t, ok) {
		return false
	}
	if _, ok := l.cur[k]; !ok && len(l.cur) >= l.half {
		l.prev, l.cur = l.cur, make(map[eventLimitKey]time.Time, l.half)
	}
	l.cur[k] = now
	return true
}

// remembered returns how many keys and types l holds.
func (l *eventLimiter) remembered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur) + len(l.prev)
}

// eventWriter appends events to an EventLog from a goroutine of its own.
type eventWriter struct {
	log     EventLog
	logger  *slog.Logger
	ch      chan eventItem
	dropped atomic.Uint64 // events not logged: queue full, or the store kept failing
	stop    sync.Once
	done    chan struct{}
	retry   []time.Duration // waits between the attempts at a batch
}

type eventItem struct {
	e       Event
	flushed chan struct{} // a flush marker when not nil
}

// eventBatch bounds the events one AppendEvents call carries.
const eventBatch = 256

func newEventWriter(log EventLog, logger *slog.Logger) *eventWriter {
	w := &eventWriter{log: log, logger: logger, ch: make(chan eventItem, eventQueueSize), done: make(chan struct{}),
		retry: []time.Duration{200 * time.Millisecond, time.Second, 5 * time.Second}}
	go w.loop()
	return w
}

// add queues e without waiting; a full queue drops it and counts the drop.
func (w *eventWriter) add(e Event) {
	select {
	case w.ch <- eventItem{e: e}:
	default:
		w.dropped.Add(1)
	}
}

func (w *eventWriter) loop() {
	defer close(w.done)
	batch := make([]Event, 0, eventBatch)
	var markers []chan struct{}
	for item := range w.ch {
		batch, markers = batch[:0], markers[:0]
		collect := func(it eventItem) {
			if it.flushed != nil {
				markers = append(markers, it.flushed)
			} else {
				batch = append(batch, it.e)
			}
		}
		collect(item)
	more:
		for len(batch) < eventBatch {
			select {
			case it, ok := <-w.ch:
				if !ok {
					break more
				}
				collect(it)
			default:
				break more
			}
		}
		w.write(batch)
		for _, m := range markers {
			close(m)
		}
	}
}

// write appends batch, trying again after each of w.retry; a batch the
// store keeps refusing is dropped, logged and counted.
func (w *eventWriter) write(batch []Event) {
	if len(batch) == 0 {
		return
	}
	var err error
	for attempt := 0; ; attempt++ {
		if err = w.log.AppendEvents(context.Background(), batch); err == nil {
			return
		}
		if attempt >= len(w.retry) {
			break
		}
		time.Sleep(w.retry[attempt])
	}
	w.dropped.Add(uint64(len(batch)))
	w.logger.Error("licensing: append events to the event log; dropped them", "events", len(batch), "err", err)
}

// flush waits until every event queued before it was written (or dropped).
func (w *eventWriter) flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case w.ch <- eventItem{flushed: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close writes what is queued and stops the goroutine.
func (w *eventWriter) close() {
	w.stop.Do(func() { close(w.ch) })
	<-w.done
}

// DroppedEvents returns how many events the event log did not get since
// New: validate-route events over the writer's full queue, and events the
// store kept refusing (each such batch is also logged at error level). An
// owner action's event that the store refused once is retried through the
// same writer and counted here if it is lost. 0 without an event log.
func (s *Service) DroppedEvents() uint64 {
	if s.ewriter == nil {
		return 0
	}
	return s.ewriter.dropped.Load()
}

// logLater queues a validate-route event for the event log, when the store
// has one and the event is one it keeps (loggedOutcome, eventLimiter). It
// gives e its id first (a derived one for key.activated, which every server
// sends alike), so that OnEvent sees the id the log keeps.
func (s *Service) logLater(e *Event) {
	if s.elog == nil || !loggedOutcome(e) {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if !s.limiter.allow(e.KeyID, e.Type, e.Time) {
		return
	}
	if e.ID == "" {
		if e.Type == EventKeyActivated {
			e.ID = derivedEventID(e.Type, e.KeyID, "")
		} else {
			e.ID = newEventID()
		}
	}
	s.ewriter.add(*e)
}

// logNow appends an owner action's event to the event log before the
// action's call returns. The action is done whatever happens here, so a
// failed append does not fail it: it is logged, and the event handed to
// the writer to be tried again.
func (s *Service) logNow(ctx context.Context, e Event) {
	if s.elog == nil {
		return
	}
	if err := s.elog.AppendEvents(context.WithoutCancel(ctx), []Event{e}); err != nil {
		s.cfg.Logger.Error("licensing: append an event to the event log; trying again in the background",
			"type", string(e.Type), "key", e.KeyID, "err", err)
		s.ewriter.add(e)
	}
}

// maintainEvents prunes the event log every eventPruneEvery, and sends the
// expiry reminders every reminderEvery, until stop is closed. (New does
// both once before it starts this.)
func (s *Service) maintainEvents(stop <-chan struct{}) {
	ctx := context.Background()
	prune, remind := time.NewTicker(eventPruneEvery), time.NewTicker(reminderEvery)
	defer prune.Stop()
	defer remind.Stop()
	for {
		select {
		case <-stop:
			return
		case <-prune.C:
			s.pruneEvents(ctx)
		case <-remind.C:
			s.remindExpiring(ctx)
		}
	}
}

// pruneEvents applies the retention (Config.EventRetention,
// Config.EventRetentionCount) once.
func (s *Service) pruneEvents(ctx context.Context) (int, error) {
	n, err := s.elog.PruneEvents(ctx, s.now().Add(-s.cfg.EventRetention), s.cfg.EventRetentionCount)
	if err != nil {
		s.cfg.Logger.Error("licensing: prune the event log", "err", err)
	}
	return n, err
}
