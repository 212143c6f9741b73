package licensing

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Rotation overlaps: how long a rotated key keeps validating (see
// Service.RotateKey).
const (
	defaultRotationOverlap = 168 * time.Hour  // 7 days
	maxRotationOverlap     = 2160 * time.Hour // 90 days
)

// checkExpiresAt refuses a time stores cannot keep (they hold Unix
// nanoseconds) and, when future is set, one that is not after now. The
// zero time (never) passes.
func checkExpiresAt(t, now time.Time, future bool) error {
	if t.IsZero() {
		return nil
	}
	if !ValidExpiry(t) {
		return ErrInvalidExpiry
	}
	if future && !t.After(now) {
		return &Error{Code: CodeInvalid, Message: "expiresAt must be in the future (or null for a key that never expires)"}
	}
	return nil
}

// SetKeyExpiry sets when key id of the actor's organization expires (zero:
// never) and returns the key as ListKeys shows it. Any time is accepted,
// also a past one, which ends the key now; an expired key given a later
// expiry validates again. The old key of a rotation (RotatedTo set) still
// stops by itself: its expiry may be moved to any time up to 90 days (the
// longest rotation overlap) from now, not past it nor removed (an error of
// code CodeConflict; should a rotation come in between, the key is left to
// expire 90 days from now). The actor must be the owner (plan and active
// flag are not checked, as for RevokeKey). A revoked key gives ErrKeyRevoked; an id
// that is not a UUID, unknown, or of another organization ErrKeyNotFound.
// It sends EventKeyRenewed.
func (s *Service) SetKeyExpiry(ctx context.Context, a Actor, id string, expiresAt time.Time) (Key, error) {
	if !expiresAt.IsZero() {
		expiresAt = expiresAt.UTC().Truncate(time.Second)
	}
	if err := checkExpiresAt(expiresAt, time.Time{}, false); err != nil {
		return Key{}, err
	}
	k, err := s.ownedKey(ctx, a, id)
	if err != nil {
		return Key{}, err
	}
	if !k.Active {
		return Key{}, ErrKeyRevoked
	}
	if k.RotatedTo != "" {
		if err := rotatedExpiry(expiresAt, s.now()); err != nil {
			return Key{}, err
		}
	}
	k, err = s.cfg.Store.SetKeyExpiry(ctx, k.ID, expiresAt)
	if err != nil {
		if e := storeSentinel(err, ErrKeyRevoked, ErrKeyNotFound); e != nil {
			return Key{}, e // a revocation that came in between
		}
		return Key{}, wrapErr("set key expiry", err)
	}
	if k.RotatedTo != "" && rotatedExpiry(expiresAt, s.now()) != nil {
		// A rotation came in between, and this write undid the end of its
		// overlap: bound the replaced key again, as a renewal of it may.
		limit := s.now().Add(maxRotationOverlap).UTC().Truncate(time.Second)
		if _, err := s.cfg.Store.SetKeyExpiry(ctx, k.ID, limit); err != nil && !errors.Is(err, ErrKeyRevoked) {
			return Key{}, wrapErr("set key expiry", err)
		}
		return Key{}, errRotatedExpiry
	}
	s.expired.forget(k.ID) // a later expiry is told again
	s.emit(ctx, Event{Type: EventKeyRenewed, KeyID: k.ID, OrganizationID: k.OrganizationID,
		MaskedKey: k.MaskedKey, UserID: a.UserID, ExpiresAt: k.ExpiresAt})
	s.remindIfDue(ctx, k)
	keys := []Key{k}
	s.rec.overlay(keys)
	return keys[0], nil
}

// rotatedExpiry refuses an expiry for the old key of a rotation that would
// keep it beyond the longest overlap from now, or forever: the leaked key
// a rotation replaced must stop by itself.
func rotatedExpiry(expiresAt, now time.Time) error {
	limit := now.Add(maxRotationOverlap).UTC().Truncate(time.Second)
	if !expiresAt.IsZero() && !expiresAt.After(limit) {
		return nil
	}
	return errRotatedExpiry
}

// errRotatedExpiry refuses to keep the old key of a rotation beyond the
// longest overlap.
var errRotatedExpiry = &Error{Code: CodeConflict, Message: ErrKeyRotated.Message + "; its expiresAt can be at most 90 days from now, not null"}

// errRotateExpired refuses the rotation of a key past its expiry, whose
// new key would take the past expiry over.
var errRotateExpired = &Error{Code: CodeForbidden, Message: "License key has expired; renew it (set a later expiresAt) before rotating it."}

// RotateKey replaces key id of the actor's organization by a new key, which
// takes over the old key's instance name and URL and its expiry. The old
// key keeps validating for overlap (0 to 90 days; 0 ends it now)
// or until its own expiry if that comes first, then answers as expired. The
// checks are those of CreateKey (owner, active organization, eligible
// plan); a revoked key gives ErrKeyRevoked, a key rotated before
// ErrKeyRotated, an unknown one ErrKeyNotFound, an expired one an error of
// code CodeForbidden (renew it first). The rotation is one store
// operation (Store.RotateKey). It returns the new key (shown to the owner
// once, as CreateKey's) and the old key as it now is, and sends
// EventKeyCreated for the new key and EventKeyRotated for the old one.
func (s *Service) RotateKey(ctx context.Context, a Actor, id string, overlap time.Duration) (CreatedKey, Key, error) {
	if overlap < 0 || overlap > maxRotationOverlap {
		return CreatedKey{}, Key{}, &Error{Code: CodeInvalid, Message: "overlapHours must be a whole number from 0 to 2160"}
	}
	org, err := s.owner(ctx, a, true)
	if err != nil {
		return CreatedKey{}, Key{}, err
	}
	old, err := s.orgKey(ctx, org.ID, id)
	if err != nil {
		return CreatedKey{}, Key{}, err
	}
	switch {
	case !old.Active:
		return CreatedKey{}, Key{}, ErrKeyRevoked
	case old.RotatedTo != "":
		return CreatedKey{}, Key{}, ErrKeyRotated
	case !old.ExpiresAt.IsZero() && !s.now().Before(old.ExpiresAt):
		return CreatedKey{}, Key{}, errRotateExpired // the new key would take over a past expiry
	}
	// The new key takes over the instance fields inside the store's step:
	// write the validations still in the batch first, so they are current.
	_ = s.rec.flush(ctx) // on failure the store's values are the ones taken over
	for attempt := 0; ; attempt++ {
		k, full, err := s.newKey(org.ID, "")
		if err != nil {
			return CreatedKey{}, Key{}, err
		}
		now := s.now()
		updated, err := s.cfg.Store.RotateKey(ctx, old.ID, k, now.Add(overlap).Truncate(time.Second))
		if errors.Is(err, ErrDuplicateKey) && attempt < 4 {
			continue // a lookup prefix already taken (Argon2Hasher): make another key
		}
		if err != nil {
			if e := storeSentinel(err, ErrKeyRevoked, ErrKeyRotated, ErrKeyNotFound); e != nil {
				return CreatedKey{}, Key{}, e // a revocation or rotation that came in between
			}
			return CreatedKey{}, Key{}, wrapErr("rotate key", err)
		}
		if stored, err := s.cfg.Store.KeyByID(ctx, k.ID); err == nil {
			k = stored // with the fields taken over from the old key
		} else {
			k.RotatedFrom, k.InstanceName, k.InstanceURL = old.ID, updated.InstanceName, updated.InstanceURL
			k.MaxInstances = old.MaxInstances
		}
		s.emit(ctx, Event{Type: EventKeyCreated, Time: k.CreatedAt, KeyID: k.ID,
			OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey, UserID: a.UserID})
		s.emit(ctx, Event{Type: EventKeyRotated, Time: now, KeyID: updated.ID, OrganizationID: updated.OrganizationID,
			MaskedKey: updated.MaskedKey, UserID: a.UserID, ExpiresAt: updated.ExpiresAt, RotatedTo: k.ID})
		s.remindIfDue(ctx, updated)
		s.remindIfDue(ctx, k)
		return CreatedKey{Key: k, LicenseKey: full}, updated, nil
	}
}

// storeSentinel returns the one of sentinels that err is, or nil.
func storeSentinel(err error, sentinels ...*Error) *Error {
	for _, e := range sentinels {
		if errors.Is(err, e) {
			return e
		}
	}
	return nil
}

// toldKeys remembers the keys an event was told for (EventKeyExpired,
// EventKeyActivated), so the event is sent once per key: at most max of
// them, forgotten all at once when full (a key then may be told again) and
// by forget (a renewal tells a later expiry again).
type toldKeys struct {
	mu  sync.Mutex
	ids map[string]struct{}
	max int
}

func newToldKeys(max int) *toldKeys {
	return &toldKeys{ids: map[string]struct{}{}, max: max}
}

// first reports whether id was not told before, and remembers it.
func (e *toldKeys) first(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.ids[id]; ok {
		return false
	}
	if len(e.ids) >= e.max {
		clear(e.ids)
	}
	e.ids[id] = struct{}{}
	return true
}

func (e *toldKeys) forget(id string) {
	e.mu.Lock()
	delete(e.ids, id)
	e.mu.Unlock()
}

// rejectExpired answers a validation of a real key past its expiry:
// ErrKeyExpired with the key's id and expiry, the first time for the key
// with EventKeyExpired too, all off the request path.
func (s *Service) rejectExpired(ctx context.Context, k *Key) (ValidationResult, error) {
	s.emitLater(ctx, failed(OutcomeExpired, k))
	if (s.events != nil || s.elog != nil) && s.expired.first(k.ID) {
		s.emitLater(ctx, Event{Type: EventKeyExpired, Time: s.now(), KeyID: k.ID,
			OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey, ExpiresAt: k.ExpiresAt})
	}
	return ValidationResult{KeyID: k.ID, ExpiresAt: k.ExpiresAt}, ErrKeyExpired
}
