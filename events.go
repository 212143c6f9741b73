package licensing

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// EventType names what happened.
type EventType string

// Event types.
const (
	EventKeyCreated       EventType = "key.created"
	EventKeyRevoked       EventType = "key.revoked"
	EventKeyValidated     EventType = "key.validated"
	EventValidationFailed EventType = "key.validation_failed"
	EventKeyShared        EventType = "key.shared"
	EventTokenIssued      EventType = "key.token_issued"
	EventKeyRotated       EventType = "key.rotated"
	EventKeyRenewed       EventType = "key.renewed"
	EventKeyExpired       EventType = "key.expired"            // the first validation refused as expired
	EventKeyActivated     EventType = "key.activated"          // the first successful validation of a key
	EventSeatLimitReached EventType = "key.seat_limit_reached" // a new instance refused: every seat taken
	EventKeyExpiring      EventType = "key.expiring"           // once per key and expiry, Config.ExpiryReminder before it
	EventInstanceReleased EventType = "instance.released"      // the owner freed an instance's seat
)

// Event tells Config.OnEvent what happened. It carries ids and masked keys
// only, never a full key or token.
type Event struct {
	// ID identifies the event: unique in an EventLog, the webhook-id of its
	// deliveries. The Service sets it (a UUIDv7, or an id derived from the
	// key and expiry for EventKeyExpiring, so that every server sends the
	// same one).
	ID string
	// Seq is the event's position in an EventLog, set by AppendEvents:
	// every event appended later has a greater Seq. 0 outside a log.
	Seq            uint64
	Type           EventType
	Time           time.Time
	KeyID          string
	OrganizationID string
	MaskedKey      string
	UserID         string  // the actor, for owner actions
	Outcome        Outcome // for EventValidationFailed: why it failed
	InstanceCount  int     // for EventKeyShared: distinct instances in the window
	// ExpiresAt is the key's expiry (zero: never) for EventKeyRenewed,
	// EventKeyExpired and EventKeyRotated (then: when the old key stops).
	ExpiresAt time.Time
	RotatedTo string // for EventKeyRotated: the new key's id
	// InstanceID is the instance (Instance.ID) for EventKeyShared,
	// EventSeatLimitReached, EventKeyActivated and EventInstanceReleased.
	InstanceID   string
	MaxInstances int // for EventSeatLimitReached: the limit reached
}

// eventQueue hands the validate route's events (validated, failed, shared)
// to Config.OnEvent on a goroutine of its own, so that no validation waits
// for an event handler and a failed validation costs what a successful one
// does up to its answer. It holds at most eventQueueSize events; past that
// it drops them and counts the drops.
type eventQueue struct {
	on      func(context.Context, Event)
	ch      chan queuedEvent
	dropped atomic.Uint64
	stop    sync.Once
	done    chan struct{}
}

const eventQueueSize = 4096

type queuedEvent struct {
	ctx     context.Context
	e       Event
	flushed chan struct{} // a flush marker when not nil
}

func newEventQueue(on func(context.Context, Event)) *eventQueue {
	q := &eventQueue{on: on, ch: make(chan queuedEvent, eventQueueSize), done: make(chan struct{})}
	go q.loop()
	return q
}

func (q *eventQueue) loop() {
	defer close(q.done)
	for ev := range q.ch {
		if ev.flushed != nil {
			close(ev.flushed)
			continue
		}
		if ev.e.ID == "" {
			ev.e.ID = newEventID() // here, not on the request path
		}
		q.on(ev.ctx, ev.e)
	}
}

// add queues e without waiting; the request's context values travel with
// it, its cancellation does not.
func (q *eventQueue) add(ctx context.Context, e Event) {
	select {
	case q.ch <- queuedEvent{ctx: context.WithoutCancel(ctx), e: e}:
	default:
		q.dropped.Add(1)
	}
}

// flush waits until every event queued before it was handled.
func (q *eventQueue) flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case q.ch <- queuedEvent{flushed: done}:
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

// close handles what is queued and stops the goroutine.
func (q *eventQueue) close() {
	q.stop.Do(func() { close(q.ch) })
	<-q.done
}
