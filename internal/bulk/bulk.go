// Package bulk gives this module's stores the bulk operations of a
// licensing.MemoryStore (load trusted keys without checks, reserve room,
// walk every key, count) that embedders have no use for.
//
// MemoryStore.BulkOps hands them out in exchange for a Capability, which
// only packages of this module can name, so the operations stay out of
// reach of embedders without an untyped hook.
package bulk

import "time"

// Capability is the argument of licensing.MemoryStore.BulkOps. Its zero
// value is the only value; a package outside this module cannot make one
// because it cannot import this package.
type Capability struct{ _ [0]func() }

// Ops are the bulk operations of a memory store of keys of type K
// (licensing.Key) and instances of type I (licensing.Instance).
type Ops[K, I any] interface {
	// Load adds keys that are already checked (from the store's own log),
	// without the duplicate and id checks of CreateKey.
	Load(keys ...K) error
	// Reserve makes room for n keys in total.
	Reserve(n int)
	// Each calls fn for every key, in no order, until fn returns false.
	Each(fn func(K) bool)
	// Len returns the number of keys.
	Len() int

	// EachInstances calls fn with the id of every key that has instances
	// and copies of all of them, whatever their age, in no order, until fn
	// returns false. Instance writers are held only while a key's list is
	// copied.
	EachInstances(fn func(keyID string, list []I) bool)
	// LoadInstances gives key keyID the instances of list (already checked,
	// from the store's own files) in place of those it had. It returns an
	// error for a key the store does not hold.
	LoadInstances(keyID string, list []I) error
	// HasInstance reports whether key keyID remembers instance id, whatever
	// its age.
	HasInstance(keyID, id string) bool
	// RefreshInstance updates instance inst of key keyID as SeatInstance
	// does for an instance that holds a seat, in one step, when it holds
	// one at inst's LastSeenAt (seen less than lease before it), and
	// returns the seats held then; ok is false, and nothing changed,
	// otherwise.
	RefreshInstance(keyID string, inst I, lease time.Duration) (seated int, ok bool)
	// ReplaySeat applies a seat that a store's log recorded (inst, taken
	// under lease): as SeatInstance without a limit, except that the key's
	// other instances are forgotten only to keep MaxInstancesLimit, since
	// their sightings that came before the seat may follow it in the log.
	// PruneInstances, once the log is read, forgets them as the seat did.
	ReplaySeat(keyID string, inst I, lease time.Duration) error
	// PruneInstances forgets the instances of key keyID seen lease or more
	// before now.
	PruneInstances(keyID string, now time.Time, lease time.Duration)
}

// EventOps are the event log operations of a memory store of events of
// type E (licensing.Event), for a store that keeps its own durable copy:
// the caller holds the lock (Lock, Unlock) around the Locked methods, so
// that it can choose Seqs (FreshLocked), make them durable, then apply
// them (LoadLocked) as one step.
type EventOps[E any] interface {
	Lock()
	Unlock()
	// FreshLocked returns the events the log does not hold yet (by id),
	// with the Seqs they would get, without storing them; an event the
	// log cannot keep is an error.
	FreshLocked(events []E) ([]E, error)
	// LoadLocked stores events that carry their Seqs, each above the last.
	LoadLocked(events []E) error
	// PruneLocked is PruneEvents.
	PruneLocked(before time.Time, keep int) int
	// LastSeq is the greatest Seq ever given; SetLastSeq raises it.
	LastSeq() uint64
	SetLastSeq(n uint64)
	// Each calls fn for every event, Seq ascending, until fn returns false.
	Each(fn func(E) bool)
	// Len returns the number of events.
	Len() int
}
