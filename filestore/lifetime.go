package filestore

import (
	"context"
	"time"

	"github.com/licensekit/licensing"
)

// Key lifetime writes (SetKeyExpiry, RotateKey) check the key and apply
// their record holding s.apply exclusively: no other write is between its
// log record and memory meanwhile, so the log holds them in the order
// memory applied them, and replaying a log repeats their checks and copies
// with the same outcome. They are owner actions, rare next to validations:
// holding the other writers for one fsync costs nothing that matters.

// SetKeyExpiry implements licensing.Store: the new expiry is fsynced before
// it returns.
func (s *Store) SetKeyExpiry(ctx context.Context, id string, expiresAt time.Time) (licensing.Key, error) {
	if err := ctx.Err(); err != nil {
		return licensing.Key{}, err
	}
	if !licensing.ValidExpiry(expiresAt) {
		return licensing.Key{}, licensing.ErrInvalidExpiry
	}
	if err := s.writable(); err != nil {
		return licensing.Key{}, err
	}
	s.apply.Lock()
	defer s.apply.Unlock()
	k, err := s.mem.KeyByID(ctx, id)
	if err != nil {
		return licensing.Key{}, err
	}
	if !k.Active {
		return licensing.Key{}, licensing.ErrKeyRevoked
	}
	e := &encoder{}
	encodeExpiry(e, id, expiresAt)
	if err := s.commit(e.b); err != nil {
		return licensing.Key{}, err
	}
	// Not ctx: the record is durable, memory must have it.
	return s.mem.SetKeyExpiry(context.Background(), id, expiresAt)
}

// RotateKey implements licensing.Store: the rotation is one log record,
// fsynced before it returns. A crash that tears it leaves a tail that Open
// cuts: no new key, and the old key as it was.
func (s *Store) RotateKey(ctx context.Context, oldID string, newKey licensing.Key, oldEndsAt time.Time) (licensing.Key, error) {
	if err := ctx.Err(); err != nil {
		return licensing.Key{}, err
	}
	if !licensing.ValidExpiry(oldEndsAt) {
		return licensing.Key{}, licensing.ErrInvalidExpiry
	}
	if err := s.writable(); err != nil {
		return licensing.Key{}, err
	}
	s.apply.Lock()
	defer s.apply.Unlock()
	old, err := s.mem.KeyByID(ctx, oldID)
	switch {
	case err != nil:
		return licensing.Key{}, err
	case !old.Active:
		return licensing.Key{}, licensing.ErrKeyRevoked
	case old.RotatedTo != "":
		return licensing.Key{}, licensing.ErrKeyRotated
	case !licensing.ValidKeyID(newKey.ID):
		return licensing.Key{}, licensing.ErrInvalidKeyID
	}
	release, err := s.reserve(ctx, newKey) // a create of the same id or lookup value waits for s.apply, or holds its reservation
	if err != nil {
		return licensing.Key{}, err
	}
	defer release()

	newKey.RotatedFrom, newKey.RotatedTo = old.ID, ""
	newKey.InstanceName, newKey.InstanceURL, newKey.ExpiresAt = old.InstanceName, old.InstanceURL, old.ExpiresAt
	newKey.MaxInstances = old.MaxInstances
	oldExpiresAt := old.ExpiresAt // the earlier of the two, zero being never
	if !oldEndsAt.IsZero() && (old.ExpiresAt.IsZero() || oldEndsAt.Before(old.ExpiresAt)) {
		oldExpiresAt = oldEndsAt
	}
	e := &encoder{b: make([]byte, 0, 320)}
	encodeRotate(e, old.ID, oldExpiresAt, newKey)
	if err := s.commit(e.b); err != nil {
		return licensing.Key{}, err
	}
	s.liveSize.Add(int64(len(e.b) + frameSize))
	// Not ctx: the rotation is durable, memory must have it. Memory makes
	// the same checks and copies, on the state just checked.
	return s.mem.RotateKey(context.Background(), old.ID, newKey, oldExpiresAt)
}
