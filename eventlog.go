package licensing

import (
	"context"
	"time"
)

// EventLog is a store capability: a Store that also implements EventLog
// keeps the Service's events durably (owner actions, and the notable
// validation outcomes, rate-bounded per key), serves Service.Events, and
// lets a webhook deliverer read them in order. The memory, file and
// PostgreSQL stores implement it; the conformance suite (package storetest)
// checks it for a store that does.
//
// An event in the log never holds a full key or token (Event carries
// masked keys and ids only).
type EventLog interface {
	// AppendEvents stores events, in order, durably when it returns nil,
	// giving each a Seq greater than every Seq given before (across every
	// process sharing the store, and in commit order: a reader that has
	// seen Seq n will never later see a new event below n). An event whose
	// ID the log holds already is skipped, not an error, so appending is
	// idempotent. Events must have an ID, a Type and a Time.
	AppendEvents(ctx context.Context, events []Event) error
	// Events returns the organization's events newest first (Seq
	// descending) with Seq below q.Before (0: from the newest), only those
	// of q.KeyID and of type q.Type when set, at most q.Limit (0: all).
	// None gives an empty, non-nil slice.
	Events(ctx context.Context, orgID string, q EventQuery) ([]Event, error)
	// EventsAfter returns the events of every organization with Seq above
	// after, oldest first, at most limit: what a webhook deliverer reads.
	EventsAfter(ctx context.Context, after uint64, limit int) ([]Event, error)
	// PruneEvents deletes the events older than before, and all but the
	// newest keep events (keep 0: no bound by count), and returns how many
	// it deleted. Seqs are never reused.
	PruneEvents(ctx context.Context, before time.Time, keep int) (int, error)
	// ExpiringKeys returns active keys whose ExpiresAt is at or before
	// until, in (ExpiresAt, ID) order, starting after the position
	// (afterExpiry, afterID) (pass the current time and "" to start with
	// the keys that have not expired yet), at most limit: what the Service
	// pages through to send EventKeyExpiring.
	ExpiringKeys(ctx context.Context, until, afterExpiry time.Time, afterID string, limit int) ([]Key, error)
}

// EventQuery selects an organization's events (EventLog.Events).
type EventQuery struct {
	Before uint64    // only events with a smaller Seq; 0: from the newest
	KeyID  string    // only this key's events; "": every key's
	Type   EventType // only events of this type; "": every type
	Limit  int       // at most this many; 0: all
}
