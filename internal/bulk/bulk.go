// Package bulk gives this module's stores the bulk operations of a
// licensing.MemoryStore (load trusted keys without checks, reserve room,
// walk every key, count) that embedders have no use for.
//
// MemoryStore.BulkOps hands them out in exchange for a Capability, which
// only packages of this module can name, so the operations stay out of
// reach of embedders without an untyped hook.
package bulk

// Capability is the argument of licensing.MemoryStore.BulkOps. Its zero
// value is the only value; a package outside this module cannot make one
// because it cannot import this package.
type Capability struct{ _ [0]func() }

// Ops are the bulk operations of a memory store of keys of type K
// (licensing.Key).
type Ops[K any] interface {
	// Load adds keys that are already checked (from the store's own log),
	// without the duplicate and id checks of CreateKey.
	Load(keys ...K) error
	// Reserve makes room for n keys in total.
	Reserve(n int)
	// Each calls fn for every key, in no order, until fn returns false.
	Each(fn func(K) bool)
	// Len returns the number of keys.
	Len() int
}
