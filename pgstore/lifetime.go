package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/licensekit/licensing"
)

// SetKeyExpiry implements licensing.Store with one conditional UPDATE: a
// revoked key is left as it is.
func (s *Store) SetKeyExpiry(ctx context.Context, id string, expiresAt time.Time) (licensing.Key, error) {
	if !licensing.ValidExpiry(expiresAt) {
		return licensing.Key{}, licensing.ErrInvalidExpiry
	}
	if !licensing.ValidKeyID(id) {
		return licensing.Key{}, licensing.ErrKeyNotFound
	}
	u := uuid.MustParse(id)
	defer s.invalidated(id)
	k, err := scanKey(s.pool.QueryRow(ctx, `UPDATE licensing_keys SET expires_at = $2
		WHERE id = $1 AND active RETURNING `+columns, u, optTime(expiresAt)))
	if !errors.Is(err, licensing.ErrKeyNotFound) {
		return k, err
	}
	// Missing, or revoked (a revoked key is never active again).
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM licensing_keys WHERE id = $1)`, u).Scan(&exists); err != nil {
		return licensing.Key{}, storeErr("set key expiry", err)
	}
	if exists {
		return licensing.Key{}, licensing.ErrKeyRevoked
	}
	return licensing.Key{}, licensing.ErrKeyNotFound
}

// RotateKey implements licensing.Store in one transaction: the old key's
// row is locked (SELECT ... FOR UPDATE), checked, the new key inserted and
// the old key updated, then committed. Concurrent rotations or revocations
// of the key wait for the lock and see its outcome: of two rotations one
// wins and the other gets licensing.ErrKeyRotated. A connection lost before
// the commit rolls everything back.
func (s *Store) RotateKey(ctx context.Context, oldID string, newKey licensing.Key, oldEndsAt time.Time) (licensing.Key, error) {
	if !licensing.ValidExpiry(oldEndsAt) {
		return licensing.Key{}, licensing.ErrInvalidExpiry
	}
	if !licensing.ValidKeyID(oldID) {
		return licensing.Key{}, licensing.ErrKeyNotFound
	}
	old := uuid.MustParse(oldID)
	defer s.invalidated(oldID)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return licensing.Key{}, storeErr("rotate key", err)
	}
	defer tx.Rollback(ctx) // after a commit: nothing to do
	var active bool
	var rotatedTo *string
	var expires *time.Time
	err = tx.QueryRow(ctx, `SELECT active, rotated_to, instance_name, instance_url, expires_at, max_instances
		FROM licensing_keys WHERE id = $1 FOR UPDATE`, old).
		Scan(&active, &rotatedTo, &newKey.InstanceName, &newKey.InstanceURL, &expires, &newKey.MaxInstances)
	if errors.Is(err, pgx.ErrNoRows) {
		return licensing.Key{}, licensing.ErrKeyNotFound
	}
	if err != nil {
		return licensing.Key{}, storeErr("rotate key", err)
	}
	newKey.ExpiresAt = time.Time{}
	if expires != nil {
		newKey.ExpiresAt = expires.UTC()
	}
	switch {
	case !active:
		return licensing.Key{}, licensing.ErrKeyRevoked
	case rotatedTo != nil:
		return licensing.Key{}, licensing.ErrKeyRotated
	case !licensing.ValidKeyID(newKey.ID):
		return licensing.Key{}, licensing.ErrInvalidKeyID
	}
	newKey.RotatedFrom, newKey.RotatedTo = oldID, ""
	if _, err := tx.Exec(ctx, insertKey, insertArgs(newKey)...); isUniqueViolation(err) {
		return licensing.Key{}, licensing.ErrDuplicateKey
	} else if err != nil {
		return licensing.Key{}, storeErr("rotate key: store the new key", err)
	}
	// The row lock makes the conditions hold; they are there so that the
	// update can never overwrite another rotation's link. LEAST ignores
	// NULLs: the earlier of the two, NULL (never) in both being never.
	k, err := scanKey(tx.QueryRow(ctx, `UPDATE licensing_keys
		SET rotated_to = $2, expires_at = LEAST(expires_at, $3::timestamptz)
		WHERE id = $1 AND active AND rotated_to IS NULL RETURNING `+columns, old, newKey.ID, optTime(oldEndsAt)))
	if errors.Is(err, licensing.ErrKeyNotFound) {
		return licensing.Key{}, fmt.Errorf("pgstore: rotate key: %s was revoked or rotated during the rotation: %w", oldID, licensing.ErrKeyRotated)
	}
	if err != nil {
		return licensing.Key{}, storeErr("rotate key: update the old key", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return licensing.Key{}, storeErr("rotate key: commit", err)
	}
	return k, nil
}
