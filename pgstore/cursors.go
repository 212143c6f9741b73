package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/licensekit/licensing/internal/webhook"
)

var _ webhook.Cursors = (*Store)(nil)

// Webhook delivery progress is webhook_cursors, one row per endpoint. Both
// methods are one conditional statement on the endpoint's row, so of two
// servers asking at once PostgreSQL's row lock lets one decide first and
// the other see its outcome: one endpoint is never leased to two holders.

// LeaseCursor implements webhook.Cursors with one INSERT ... ON CONFLICT DO
// UPDATE whose WHERE takes the lease only from its own holder or from one
// whose lease has run out.
func (s *Store) LeaseCursor(ctx context.Context, endpoint, holder string, now time.Time, ttl time.Duration) (uint64, bool, error) {
	if endpoint == "" || holder == "" {
		return 0, false, errors.New("pgstore: lease cursor: empty endpoint or holder")
	}
	var cursor int64
	err := s.pool.QueryRow(ctx, `INSERT INTO webhook_cursors AS c (endpoint, cursor, holder, lease_until)
		VALUES ($1, 0, $2, $4)
		ON CONFLICT (endpoint) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
		WHERE c.holder = excluded.holder OR c.lease_until <= $3
		RETURNING cursor`, endpoint, holder, now, now.Add(ttl)).Scan(&cursor)
	if errors.Is(err, pgx.ErrNoRows) { // another holder's lease runs past now
		return 0, false, nil
	}
	if err != nil {
		return 0, false, storeErr("lease a webhook endpoint's cursor", err) // not the endpoint: its URL may hold a token
	}
	return uint64(cursor), true, nil
}

// CommitCursor implements webhook.Cursors with one UPDATE conditional on
// holder holding the lease: the row names it (every change of holder goes
// through LeaseCursor, which takes only run-out leases).
func (s *Store) CommitCursor(ctx context.Context, endpoint, holder string, cursor uint64, now time.Time, ttl time.Duration) error {
	if cursor > math.MaxInt64 {
		return fmt.Errorf("pgstore: commit a webhook endpoint's cursor: cursor %d out of range", cursor)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_cursors SET cursor = GREATEST(cursor, $3), lease_until = $4
		WHERE endpoint = $1 AND holder = $2`, endpoint, holder, int64(cursor), now.Add(ttl))
	if err != nil {
		return storeErr("commit a webhook endpoint's cursor", err)
	}
	if tag.RowsAffected() == 0 {
		return webhook.ErrLeaseLost
	}
	return nil
}
