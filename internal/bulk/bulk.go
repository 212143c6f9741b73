// Package bulk gives this module's stores the bulk operations of a
// licensing.MemoryStore (load trusted keys without checks, reserve room,
// walk every key, count) that embedders have no use for, so they stay out
// of the public API.
package bulk

// Access returns the bulk operations of a *licensing.MemoryStore. The
// result has the methods Load(...licensing.Key) error, Reserve(int),
// Each(func(licensing.Key) bool) and Len() int; the caller asserts it to an
// interface of its own. Package licensing sets Access when it is loaded.
var Access func(memoryStore any) any
