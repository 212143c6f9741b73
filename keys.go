package licensing

import (
	"context"
	"errors"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/licensekit/licensing/internal/wire"
)

// CreateKeyInput holds the optional fields of a new key.
type CreateKeyInput struct {
	InstanceName string    // at most 255 characters, no control characters
	ExpiresAt    time.Time // zero: never; else after now (kept to the second)
	// MaxInstances limits how many instances may hold a seat on the key
	// (Key.MaxInstances): 0 for none of its own (the plan's
	// maxInstancesPerKey feature, or no limit), else 1 to
	// MaxInstancesLimit; another value gives ErrInvalidMaxInstances.
	MaxInstances int
}

// CreatedKey is the answer to CreateKey: the stored record and the full
// license key, which exists nowhere else and must be shown to the owner once.
type CreatedKey struct {
	Key        Key
	LicenseKey string
}

// CreateKey makes a new key for the actor's organization. The actor must be
// its owner, the organization active and its plan eligible. When it returns
// nil the key is stored as durably as the Store promises.
func (s *Service) CreateKey(ctx context.Context, a Actor, in CreateKeyInput) (CreatedKey, error) {
	if err := checkInstanceName(in.InstanceName); err != nil {
		return CreatedKey{}, err
	}
	if !in.ExpiresAt.IsZero() {
		in.ExpiresAt = in.ExpiresAt.UTC().Truncate(time.Second)
	}
	if err := checkExpiresAt(in.ExpiresAt, s.now(), true); err != nil {
		return CreatedKey{}, err
	}
	if in.MaxInstances < 0 || in.MaxInstances > MaxInstancesLimit {
		return CreatedKey{}, ErrInvalidMaxInstances
	}
	org, err := s.owner(ctx, a, true)
	if err != nil {
		return CreatedKey{}, err
	}
	for attempt := 0; ; attempt++ {
		k, full, err := s.newKey(org.ID, in.InstanceName)
		if err != nil {
			return CreatedKey{}, err
		}
		k.ExpiresAt, k.MaxInstances = in.ExpiresAt, in.MaxInstances
		err = s.cfg.Store.CreateKey(ctx, k)
		if errors.Is(err, ErrDuplicateKey) && attempt < 4 {
			continue // a lookup prefix already taken (Argon2Hasher): make another key
		}
		if err != nil {
			return CreatedKey{}, wrapErr("store key", err)
		}
		s.emit(ctx, Event{Type: EventKeyCreated, Time: k.CreatedAt, KeyID: k.ID,
			OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey, UserID: a.UserID})
		s.remindIfDue(ctx, k)
		return CreatedKey{Key: k, LicenseKey: full}, nil
	}
}

// newKey makes a new active key of organization orgID, not yet stored, and
// the full license key.
func (s *Service) newKey(orgID, instanceName string) (Key, string, error) {
	full, err := generateKey(s.cfg.Random)
	if err != nil {
		return Key{}, "", &Error{Code: CodeInternal, Message: "Could not generate a key.", Err: err}
	}
	id, err := uuid.NewV7FromReader(s.cfg.Random)
	if err != nil {
		return Key{}, "", &Error{Code: CodeInternal, Message: "Could not generate a key id.", Err: err}
	}
	digest, err := s.cfg.Hasher.Digest(full)
	if err != nil {
		return Key{}, "", &Error{Code: CodeInternal, Message: "Could not hash the key.", Err: err}
	}
	return Key{
		ID:             id.String(),
		OrganizationID: orgID,
		LookupValue:    s.cfg.Hasher.LookupValue(full),
		Digest:         digest,
		MaskedKey:      wire.MaskKey(full),
		InstanceName:   instanceName,
		Active:         true,
		CreatedAt:      s.now(),
	}, full, nil
}

// The creation times ImportKey accepts: stores keep times as Unix
// nanoseconds, with 0 for "none".
var importFrom, importUntil = time.Unix(0, 0), time.Unix(0, math.MaxInt64)

// ImportKey stores a key issued by another system for organization orgID,
// so that the instance holding it keeps validating unchanged: the seed
// system's keys are 64 random hex characters without this package's
// checksum, and are accepted with or without one (upper case and
// surrounding white space too). It is for a vendor's migration, not an
// owner route: no actor, plan or activity check, only that the
// organization exists. The key is hashed as a created one is and never
// kept; the returned Key has a new id, createdAt as its creation time (zero:
// now; else after 1970-01-01 and before 2262-04-11, or an error of code
// CodeInvalid) and the key.created event is sent. A key already in the
// store gives ErrDuplicateKey; a string that is not 64 hex characters,
// errKeyLength or errKeyNotHex. With Argon2Hasher, whose lookup value is a
// key's first 8 characters, two imported keys that share them cannot both
// be stored (the second gives ErrDuplicateKey, about once in 100,000
// keys); migrate with the default HMAC hasher.
func (s *Service) ImportKey(ctx context.Context, orgID, licenseKey string, createdAt time.Time) (Key, error) {
	full, _, err := parseKey(licenseKey)
	if err != nil {
		return Key{}, err
	}
	if _, err := s.cfg.Organizations.Organization(ctx, orgID); err != nil {
		if errors.Is(err, ErrOrgNotFound) {
			return Key{}, ErrOrgNotFound
		}
		return Key{}, wrapErr("find organization", err)
	}
	if createdAt.IsZero() {
		createdAt = s.now()
	}
	if !createdAt.After(importFrom) || !createdAt.Before(importUntil) {
		return Key{}, &Error{Code: CodeInvalid, Message: "createdAt must be after 1970-01-01 and before 2262-04-11 (UTC)"} // what stores keep as Unix nanoseconds
	}
	id, err := uuid.NewV7FromReader(s.cfg.Random)
	if err != nil {
		return Key{}, &Error{Code: CodeInternal, Message: "Could not generate a key id.", Err: err}
	}
	digest, err := s.cfg.Hasher.Digest(full)
	if err != nil {
		return Key{}, &Error{Code: CodeInternal, Message: "Could not hash the key.", Err: err}
	}
	k := Key{ID: id.String(), OrganizationID: orgID, LookupValue: s.cfg.Hasher.LookupValue(full),
		Digest: digest, MaskedKey: wire.MaskKey(full), Active: true, CreatedAt: createdAt.UTC()}
	if err := s.cfg.Store.CreateKey(ctx, k); err != nil {
		if errors.Is(err, ErrDuplicateKey) {
			return Key{}, ErrDuplicateKey
		}
		return Key{}, wrapErr("store key", err)
	}
	s.emit(ctx, Event{Type: EventKeyCreated, Time: k.CreatedAt, KeyID: k.ID, OrganizationID: orgID, MaskedKey: k.MaskedKey})
	return k, nil
}

// listChunk is how many keys a walk over a whole organization holds at once.
const listChunk = 500

// KeyPage is one page of an organization's keys, newest first.
type KeyPage struct {
	// OrganizationID and OrganizationName say whose keys these are (the
	// actor's organization, which may be its default one), so an owner's
	// screen can name it.
	OrganizationID, OrganizationName string
	Keys                             []Key
	// Next is the cursor of the following page, "" after the last one.
	Next string
}

// ListKeys returns a page of the actor's organization's keys, newest first,
// revoked ones included: at most limit keys (0: all) after cursor ("" for
// the first page; else a KeyPage.Next). The actor must be the owner; plan
// and active flag are not checked, so an owner can always see and revoke
// keys. Validations still waiting in the batch are included. A cursor that
// ListKeys did not make for this organization (forged, altered, truncated,
// or another organization's) gives an error of code CodeInvalid.
func (s *Service) ListKeys(ctx context.Context, a Actor, cursor string, limit int) (KeyPage, error) {
	if limit < 0 {
		return KeyPage{}, &Error{Code: CodeInvalid, Message: "limit must not be negative"}
	}
	org, err := s.owner(ctx, a, false)
	if err != nil {
		return KeyPage{}, err
	}
	after, err := s.parseCursor(org.ID, cursor)
	if err != nil {
		return KeyPage{}, err
	}
	fetch := limit
	if limit > 0 {
		fetch = limit + 1 // one more tells whether a next page exists
	}
	keys, err := s.cfg.Store.ListKeys(ctx, org.ID, after, fetch)
	if err != nil {
		return KeyPage{}, wrapErr("list keys", err)
	}
	page := KeyPage{OrganizationID: org.ID, OrganizationName: org.Name}
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
		page.Next = s.formatCursor(org.ID, keys[limit-1].Cursor())
	}
	s.rec.overlay(keys)
	page.Keys = keys
	return page, nil
}

// RevokeKey revokes the key with id for good. It is idempotent. An id that is
// not a UUID, unknown, or of another organization gives the same
// ErrKeyNotFound. Once it returns nil, no validation that starts later
// succeeds with that key.
func (s *Service) RevokeKey(ctx context.Context, a Actor, id string) error {
	k, err := s.ownedKey(ctx, a, id)
	if err != nil {
		return err
	}
	if !k.Active {
		return nil
	}
	k, err = s.cfg.Store.RevokeKey(ctx, k.ID, s.now())
	if err != nil {
		return wrapErr("revoke key", err)
	}
	s.revocations.invalidate(k.OrganizationID)
	s.emit(ctx, Event{Type: EventKeyRevoked, Time: k.RevokedAt, KeyID: k.ID,
		OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey, UserID: a.UserID})
	return nil
}

// RevokedKeyIDs returns the ids of the organization's revoked keys, sorted.
// An unknown organization has none. It checks nobody: key ids are not
// secrets, and self-hosted instances read this list with no credential.
func (s *Service) RevokedKeyIDs(ctx context.Context, orgID string) ([]string, error) {
	ids, _, err := s.revokedKeyIDs(ctx, orgID)
	return ids, err
}

// revokedKeyIDs is RevokedKeyIDs, and how many keys the organization has.
func (s *Service) revokedKeyIDs(ctx context.Context, orgID string) (ids []string, keys int, err error) {
	ids = []string{}
	var after KeyCursor
	for {
		page, err := s.cfg.Store.ListKeys(ctx, orgID, after, listChunk)
		if err != nil {
			return nil, 0, wrapErr("list keys", err)
		}
		keys += len(page)
		for _, k := range page {
			if !k.Active {
				ids = append(ids, k.ID)
			}
		}
		if len(page) < listChunk {
			break
		}
		after = page[len(page)-1].Cursor()
	}
	sort.Strings(ids)
	return ids, keys, nil
}

// ownedKey finds key id of the organization of which a is the owner (its
// plan and active flag are not checked, as for every owner action on one
// key), with the errors of owner and orgKey.
func (s *Service) ownedKey(ctx context.Context, a Actor, id string) (Key, error) {
	org, err := s.owner(ctx, a, false)
	if err != nil {
		return Key{}, err
	}
	return s.orgKey(ctx, org.ID, id)
}

// orgKey finds key id of organization orgID, answering ErrKeyNotFound alike
// for a malformed id, a missing key and another organization's key.
func (s *Service) orgKey(ctx context.Context, orgID, id string) (Key, error) {
	id = strings.ToLower(id)
	if !ValidKeyID(id) {
		return Key{}, ErrKeyNotFound
	}
	k, err := s.cfg.Store.KeyByID(ctx, id)
	if errors.Is(err, ErrKeyNotFound) || (err == nil && k.OrganizationID != orgID) {
		return Key{}, ErrKeyNotFound
	}
	if err != nil {
		return Key{}, wrapErr("find key", err)
	}
	return k, nil
}
