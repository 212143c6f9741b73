// Package webhook delivers the events of a store's EventLog to the
// endpoints the reference server's operator configured, per the Standard
// Webhooks specification.
package webhook

import (
	"context"
	"errors"
	"time"
)

// Cursors is the store capability a deliverer keeps its progress in: for
// each endpoint (named by the operator's configuration), the Seq up to which
// every event was delivered or given up, and a lease that lets one process
// at a time deliver to the endpoint. The file and PostgreSQL stores
// implement it. Their errors never hold the endpoint: it is the receiver's
// URL, whose path or query may hold a token, and the deliverer logs them.
type Cursors interface {
	// LeaseCursor gives holder the endpoint's lease until now+ttl, unless
	// another holder's lease runs past now, and returns the endpoint's
	// cursor (0 for an endpoint never seen). ok is false, with no error,
	// when another holder has the lease. A holder may renew its own lease.
	LeaseCursor(ctx context.Context, endpoint, holder string, now time.Time, ttl time.Duration) (cursor uint64, ok bool, err error)
	// CommitCursor sets the endpoint's cursor to cursor (a smaller one
	// changes nothing), durably when it returns nil, and renews holder's
	// lease until now+ttl, only while holder holds the lease: otherwise
	// it returns ErrLeaseLost and changes nothing.
	CommitCursor(ctx context.Context, endpoint, holder string, cursor uint64, now time.Time, ttl time.Duration) error
}

// ErrLeaseLost is returned by CommitCursor when another holder took the
// endpoint's lease (the caller's ran out).
var ErrLeaseLost = errors.New("webhook: the endpoint's delivery lease is held by another process")
