package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/licensekit/licensing"
)

// Instances live in key_instances, one row per (key, instance). A row
// holds a seat while last_seen_at is after the validation's time minus the
// lease; older rows are deleted by the next new instance of the key.

// SetMaxInstances implements licensing.Store with one conditional UPDATE: a
// revoked key is left as it is.
func (s *Store) SetMaxInstances(ctx context.Context, id string, n int) (licensing.Key, error) {
	if n < 0 || n > licensing.MaxInstancesLimit {
		return licensing.Key{}, licensing.ErrInvalidMaxInstances
	}
	if !licensing.ValidKeyID(id) {
		return licensing.Key{}, licensing.ErrKeyNotFound
	}
	u := uuid.MustParse(id)
	defer s.invalidated(id)
	k, err := scanKey(s.pool.QueryRow(ctx, `UPDATE licensing_keys SET max_instances = $2
		WHERE id = $1 AND active RETURNING `+columns, u, n))
	if !errors.Is(err, licensing.ErrKeyNotFound) {
		return k, err
	}
	exists, err := s.keyExists(ctx, u)
	if err != nil {
		return licensing.Key{}, storeErr("set max instances", err)
	}
	if exists {
		return licensing.Key{}, licensing.ErrKeyRevoked
	}
	return licensing.Key{}, licensing.ErrKeyNotFound
}

func (s *Store) keyExists(ctx context.Context, u uuid.UUID) (bool, error) {
	var exists bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM licensing_keys WHERE id = $1)`, u).Scan(&exists)
	return exists, err
}

// seatInstance is SeatInstance on PostgreSQL. An instance that holds a
// seat costs one UPDATE (refreshSeat). Any other goes through takeSeat: one
// transaction that locks the key's row (SELECT ... FOR UPDATE), so that the
// seat takers of a key, on every server, decide one after the other. Like
// RecordValidations, it locks a key's row before its instances' rows (the
// one-row UPDATE locks no key), so the two never deadlock.
func (s *Store) seatInstance(ctx context.Context, keyID string, inst licensing.Instance, limit int, lease time.Duration) (int, bool, error) {
	if !licensing.ValidKeyID(keyID) {
		return 0, false, licensing.ErrKeyNotFound
	}
	u := uuid.MustParse(keyID)
	seated, ok, err := refreshSeat(ctx, s.pool, u, inst, lease)
	if err != nil {
		return 0, false, storeErr("seat instance", err)
	}
	if ok {
		return seated, false, nil
	}
	return s.takeSeat(ctx, u, inst, limit, lease)
}

// querier is what the seat statements run on: the pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// refreshSeat updates inst on key u when it holds a seat (seen after
// inst.LastSeenAt - lease), in one statement, and returns the seats taken
// on the key; ok is false, and nothing changed, when it holds none.
func refreshSeat(ctx context.Context, q querier, u uuid.UUID, inst licensing.Instance, lease time.Duration) (seated int, ok bool, err error) {
	err = q.QueryRow(ctx, `UPDATE key_instances SET `+mergeInstance+`
		WHERE key_id = $1 AND instance_id = $2 AND last_seen_at > $7
		RETURNING 1 + (SELECT count(*) FROM key_instances o
			WHERE o.key_id = $1 AND o.instance_id <> $2 AND o.last_seen_at > $7)`,
		mergeArgs(u, inst, inst.LastSeenAt.Add(-lease))...).Scan(&seated)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return seated, err == nil, err
}

// mergeInstance is the SET list that updates an instance row with a later
// sighting ($3 last seen, $4 name, $5 url, $6 metrics as JSON text), as
// licensing.Store.SeatInstance says: the later LastSeenAt, the non-empty
// fields.
const mergeInstance = `last_seen_at = GREATEST(last_seen_at, $3),
	name = CASE WHEN $4 <> '' THEN $4 ELSE name END,
	url = CASE WHEN $5 <> '' THEN $5 ELSE url END,
	metrics = COALESCE($6::text::jsonb, metrics)`

// mergeArgs are the arguments $1 to $7 of the seat statements: key,
// instance id, mergeInstance's four, and the oldest last_seen_at that
// holds no seat.
func mergeArgs(u uuid.UUID, inst licensing.Instance, expired time.Time) []any {
	return []any{u, inst.ID, inst.LastSeenAt, inst.Name, inst.URL, jsonOrNull(inst.Metrics, inst.Metrics == nil), expired}
}

// takeSeat seats inst on key u in one transaction holding the key's row
// lock: the instances past the lease are forgotten; inst, if it holds a
// seat, is updated; else it is new (also when its own lease ran out: it
// takes a seat back only when one is free) and takes a seat if limit
// allows. Without a limit, the
// instance seen least recently makes room past licensing.MaxInstancesLimit.
func (s *Store) takeSeat(ctx context.Context, u uuid.UUID, inst licensing.Instance, limit int, lease time.Duration) (int, bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, false, storeErr("seat instance", err)
	}
	defer tx.Rollback(ctx) // after a commit: nothing to do
	seated, added, err := takeSeatTx(ctx, tx, u, inst, limit, lease)
	if err != nil {
		return seated, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, storeErr("seat instance: commit", err)
	}
	return seated, added, nil
}

// takeSeatTx is takeSeat's work inside tx, which the caller commits when it
// returns no error.
func takeSeatTx(ctx context.Context, tx pgx.Tx, u uuid.UUID, inst licensing.Instance, limit int, lease time.Duration) (int, bool, error) {
	args := mergeArgs(u, inst, inst.LastSeenAt.Add(-lease))
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM licensing_keys WHERE id = $1 FOR UPDATE`, u).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, licensing.ErrKeyNotFound
	}
	if err != nil {
		return 0, false, storeErr("seat instance: lock the key", err)
	}
	// Forget those past the lease. A row that another server's one-row
	// refresh is updating is skipped (SKIP LOCKED), and forgotten next
	// time if it is still old.
	if _, err := tx.Exec(ctx, `DELETE FROM key_instances WHERE (key_id, instance_id) IN (
		SELECT key_id, instance_id FROM key_instances
		WHERE key_id = $1 AND last_seen_at <= $2 FOR UPDATE SKIP LOCKED)`,
		u, args[6]); err != nil {
		return 0, false, storeErr("seat instance: forget old instances", err)
	}
	var others int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM key_instances WHERE key_id = $1 AND instance_id <> $2 AND last_seen_at > $3`,
		u, inst.ID, args[6]).Scan(&others); err != nil {
		return 0, false, storeErr("seat instance: count", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE key_instances SET `+mergeInstance+` WHERE key_id = $1 AND instance_id = $2 AND last_seen_at > $7`, args...)
	if err != nil {
		return 0, false, storeErr("seat instance", err)
	}
	if tag.RowsAffected() == 1 { // it holds a seat and keeps it
		return others + 1, false, nil
	}
	if limit > 0 && others >= limit {
		return others, false, licensing.ErrSeatLimit
	}
	if others >= licensing.MaxInstancesLimit {
		tag, err := tx.Exec(ctx, `DELETE FROM key_instances WHERE (key_id, instance_id) IN (
			SELECT key_id, instance_id FROM key_instances WHERE key_id = $1
			ORDER BY last_seen_at, instance_id COLLATE "C" LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			u, others-licensing.MaxInstancesLimit+1)
		if err != nil {
			return 0, false, storeErr("seat instance: forget the least recently seen", err)
		}
		others -= int(tag.RowsAffected())
	}
	// A row of inst past the lease that the DELETE skipped is replaced.
	if _, err := tx.Exec(ctx, `INSERT INTO key_instances (key_id, instance_id, name, url, first_seen_at, last_seen_at, metrics)
		VALUES ($1, $2, $4, $5, $3, $3, $6::text::jsonb)
		ON CONFLICT (key_id, instance_id) DO UPDATE SET name = excluded.name, url = excluded.url,
			first_seen_at = excluded.first_seen_at, last_seen_at = excluded.last_seen_at, metrics = excluded.metrics`, args[:6]...); err != nil {
		return 0, false, storeErr("seat instance", err)
	}
	return others + 1, true, nil
}

// Instances implements licensing.Store with one query.
func (s *Store) Instances(ctx context.Context, keyID string, now time.Time, lease time.Duration) ([]licensing.Instance, error) {
	if !licensing.ValidKeyID(keyID) {
		return nil, licensing.ErrKeyNotFound
	}
	rows, err := s.pool.Query(ctx, `SELECT i.instance_id, i.name, i.url, i.first_seen_at, i.last_seen_at, i.metrics
		FROM licensing_keys k LEFT JOIN key_instances i ON i.key_id = k.id AND i.last_seen_at > $2
		WHERE k.id = $1 ORDER BY i.last_seen_at DESC, i.instance_id COLLATE "C"`, uuid.MustParse(keyID), now.Add(-lease))
	if err != nil {
		return nil, storeErr("instances", err)
	}
	defer rows.Close()
	var list []licensing.Instance
	for rows.Next() {
		var id, name, url *string
		var first, last *time.Time
		var metrics []byte
		if err := rows.Scan(&id, &name, &url, &first, &last, &metrics); err != nil {
			return nil, storeErr("instances", err)
		}
		if list == nil {
			list = []licensing.Instance{}
		}
		if id == nil { // the key, without instances
			continue
		}
		in := licensing.Instance{ID: *id, Name: *name, URL: *url, FirstSeenAt: first.UTC(), LastSeenAt: last.UTC()}
		if metrics != nil {
			if err := json.Unmarshal(metrics, &in.Metrics); err != nil {
				return nil, fmt.Errorf("pgstore: metrics of instance %q of %s: %w", in.ID, keyID, err)
			}
		}
		list = append(list, in)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("instances", err)
	}
	if list == nil {
		return nil, licensing.ErrKeyNotFound
	}
	if c := s.cache.Load(); c != nil {
		c.overlay(keyID, list) // sightings answered from memory, not yet recorded
	}
	return list, nil
}

// ReleaseInstance implements licensing.Store with one DELETE (and a look
// for the key when it deleted nothing).
func (s *Store) ReleaseInstance(ctx context.Context, keyID, instanceID string) error {
	if !licensing.ValidKeyID(keyID) {
		return licensing.ErrKeyNotFound
	}
	u := uuid.MustParse(keyID)
	defer s.invalidated(keyID)
	tag, err := s.pool.Exec(ctx, `DELETE FROM key_instances WHERE key_id = $1 AND instance_id = $2`, u, instanceID)
	if err != nil {
		return storeErr("release instance", err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	exists, err := s.keyExists(ctx, u)
	if err != nil {
		return storeErr("release instance", err)
	}
	if exists {
		return licensing.ErrInstanceNotFound
	}
	return licensing.ErrKeyNotFound
}
