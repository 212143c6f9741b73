package licensing

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// CreateKeyInput holds the optional fields of a new key.
type CreateKeyInput struct {
	InstanceName string // at most 255 characters, no control characters
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
	if err := checkText("instanceName", in.InstanceName, maxInstanceNameLength); err != nil {
		return CreatedKey{}, err
	}
	org, err := s.owner(ctx, a, true)
	if err != nil {
		return CreatedKey{}, err
	}
	for attempt := 0; ; attempt++ {
		full, err := GenerateKey(s.cfg.Random)
		if err != nil {
			return CreatedKey{}, &Error{Code: CodeInternal, Message: "Could not generate a key.", Err: err}
		}
		id, err := uuid.NewV7FromReader(s.cfg.Random)
		if err != nil {
			return CreatedKey{}, &Error{Code: CodeInternal, Message: "Could not generate a key id.", Err: err}
		}
		digest, err := s.cfg.Hasher.Digest(full)
		if err != nil {
			return CreatedKey{}, &Error{Code: CodeInternal, Message: "Could not hash the key.", Err: err}
		}
		k := Key{
			ID:             id.String(),
			OrganizationID: org.ID,
			LookupValue:    s.cfg.Hasher.LookupValue(full),
			Digest:         digest,
			MaskedKey:      MaskKey(full),
			InstanceName:   in.InstanceName,
			Active:         true,
			CreatedAt:      s.now(),
		}
		err = s.cfg.Store.CreateKey(ctx, k)
		if errors.Is(err, ErrDuplicateKey) && attempt < 4 {
			continue // a lookup prefix already taken (Argon2Hasher): make another key
		}
		if err != nil {
			return CreatedKey{}, wrapErr("store key", err)
		}
		s.emit(ctx, Event{Type: EventKeyCreated, Time: k.CreatedAt, KeyID: k.ID,
			OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey, UserID: a.UserID})
		return CreatedKey{Key: k, LicenseKey: full}, nil
	}
}

// ListKeys returns the actor's organization's keys, newest first, revoked
// ones included. The actor must be the owner; plan and active flag are not
// checked, so an owner can always see and revoke keys. Validations still
// waiting in the batch are included.
func (s *Service) ListKeys(ctx context.Context, a Actor) ([]Key, error) {
	org, err := s.owner(ctx, a, false)
	if err != nil {
		return nil, err
	}
	keys, err := s.cfg.Store.ListKeys(ctx, org.ID)
	if err != nil {
		return nil, wrapErr("list keys", err)
	}
	s.rec.overlay(keys)
	return keys, nil
}

// RevokeKey revokes the key with id for good. It is idempotent. An id that is
// not a UUID, unknown, or of another organization gives the same
// ErrKeyNotFound. Once it returns nil, no validation that starts later
// succeeds with that key.
func (s *Service) RevokeKey(ctx context.Context, a Actor, id string) error {
	org, err := s.owner(ctx, a, false)
	if err != nil {
		return err
	}
	k, err := s.orgKey(ctx, org.ID, id)
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
	s.emit(ctx, Event{Type: EventKeyRevoked, Time: k.RevokedAt, KeyID: k.ID,
		OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey, UserID: a.UserID})
	return nil
}

// RevokedKeyIDs returns the ids of the organization's revoked keys, sorted.
// An unknown organization has none. It checks nobody: key ids are not
// secrets, and self-hosted instances read this list with no credential.
func (s *Service) RevokedKeyIDs(ctx context.Context, orgID string) ([]string, error) {
	keys, err := s.cfg.Store.ListKeys(ctx, orgID)
	if err != nil {
		return nil, wrapErr("list keys", err)
	}
	ids := []string{}
	for _, k := range keys {
		if !k.Active {
			ids = append(ids, k.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
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
