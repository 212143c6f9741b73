package licensing

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Store keeps license keys. Implementations must be safe for concurrent use
// and return copies: a caller may modify what it gets without affecting the
// store. Every method honours ctx where it can block.
//
// Key ids are canonical lower-case UUIDs (ValidKeyID): CreateKey refuses any
// other spelling with ErrInvalidKeyID before it looks for duplicates, and
// KeyByID, RevokeKey, SetKeyExpiry and RotateKey (its old id) answer
// ErrKeyNotFound for one. Expiries (a key's ExpiresAt, SetKeyExpiry's
// expiresAt, RotateKey's oldEndsAt) are zero (never) or in the range of
// ValidExpiry, kept to the microsecond at least whatever time zone or
// monotonic reading they were given in (a store returns UTC); any other
// gives ErrInvalidExpiry before anything else is looked at (after the id
// check of CreateKey), and nothing is stored.
//
// The public conformance suite, package
// github.com/licensekit/licensing/storetest, checks this contract; run it
// from the tests of a store of your own.
type Store interface {
	// CreateKey stores a new key. It returns ErrDuplicateKey (errors.Is)
	// when a key with the same ID or LookupValue exists, ErrInvalidKeyID,
	// ErrInvalidExpiry or ErrInvalidMaxInstances for an ID, ExpiresAt or
	// MaxInstances it refuses (in that order), and stores
	// nothing then. When it returns nil the key survives a crash of the
	// process, to the degree the store promises (the memory store: not at
	// all).
	CreateKey(ctx context.Context, k Key) error
	// KeyByID returns the key with id, or ErrKeyNotFound.
	KeyByID(ctx context.Context, id string) (Key, error)
	// KeyByLookup returns the key with the lookup value, or ErrKeyNotFound.
	KeyByLookup(ctx context.Context, lookup string) (Key, error)
	// ListKeys returns the organization's keys, revoked ones included,
	// newest first (CreatedAt descending, then ID descending), starting
	// after the key that after names (the zero KeyCursor: from the newest),
	// at most limit of them (0: all). The key after names need not exist.
	// No keys give an empty, non-nil slice.
	ListKeys(ctx context.Context, orgID string, after KeyCursor, limit int) ([]Key, error)
	// RevokeKey sets Active false and RevokedAt to at, durably, and returns
	// the updated key. Revoking a revoked key changes nothing and returns
	// it with its first RevokedAt. A missing key gives ErrKeyNotFound.
	RevokeKey(ctx context.Context, id string, at time.Time) (Key, error)
	// RecordValidations applies each record to its key as
	// Key.ApplyValidation does, in one write for the whole batch. Records
	// of unknown keys are skipped.
	RecordValidations(ctx context.Context, recs []ValidationRecord) error
	// SetKeyExpiry sets the key's ExpiresAt (zero: never), durably, and
	// returns the updated key. An expired key may be given a later expiry
	// and validates again; so may a rotated one (the store has no policy).
	// A revoked key gives ErrKeyRevoked and is left unchanged; a missing
	// key gives ErrKeyNotFound, an expiry ValidExpiry refuses
	// ErrInvalidExpiry.
	SetKeyExpiry(ctx context.Context, id string, expiresAt time.Time) (Key, error)
	// RotateKey replaces the key oldID by newKey in one atomic, durable
	// step: either nothing changes, or all of this holds (also after a
	// crash at any point):
	//   - newKey is stored (as CreateKey would) with RotatedFrom = oldID,
	//     RotatedTo empty, and the old key's InstanceName, InstanceURL,
	//     ExpiresAt and MaxInstances, copied inside the same step (whatever
	//     newKey carried in those fields; the old key's instances are not
	//     copied: each takes a seat on the new key when it first uses it);
	//   - the old key has RotatedTo = newKey.ID and, as ExpiresAt, the
	//     earlier of its ExpiresAt and oldEndsAt, zero being never in
	//     both: a rotation never makes the old key live longer, and a zero
	//     oldEndsAt leaves its expiry as it was.
	// It returns the updated old key. Its errors, checked in this order:
	// an oldEndsAt ValidExpiry refuses gives ErrInvalidExpiry, a missing
	// (or malformed) old id ErrKeyNotFound, a revoked old key
	// ErrKeyRevoked, one already rotated ErrKeyRotated, a malformed
	// newKey.ID ErrInvalidKeyID, a clash of newKey's ID or LookupValue
	// ErrDuplicateKey; nothing changes on any of these errors. An error of the store itself (ErrStoreFailed, a
	// connection lost while committing) may leave the rotation done, whole:
	// read the old key to know.
	RotateKey(ctx context.Context, oldID string, newKey Key, oldEndsAt time.Time) (Key, error)

	// SetMaxInstances sets the key's MaxInstances (0: no limit of its own),
	// durably, and returns the updated key. n outside 0..MaxInstancesLimit
	// gives ErrInvalidMaxInstances, a revoked key ErrKeyRevoked (unchanged),
	// a missing one ErrKeyNotFound. Lowering it frees no seat: instances
	// that hold one keep it until their lease runs out or they are released.
	SetMaxInstances(ctx context.Context, id string, n int) (Key, error)
	// SeatInstance records that inst validated key keyID at inst.LastSeenAt
	// (inst.ID set; FirstSeenAt is ignored) and returns how many instances
	// hold a seat on the key afterwards, and whether inst took a new one.
	// An instance holds a seat while its LastSeenAt is less than lease
	// before the validation's time; others are forgotten (at any time).
	//
	// An instance that holds a seat keeps it: its LastSeenAt (the later),
	// Name, URL and Metrics (each when non-empty) are updated, and the store
	// may keep that update in memory only until RecordValidations brings a
	// record with the same KeyID and InstanceID. A new instance takes a seat
	// when limit is 0 or fewer than limit instances hold one; otherwise the
	// store returns ErrSeatLimit and changes nothing. Deciding and taking a
	// seat is one atomic step across every process that shares the store
	// (two new instances racing for the last seat: exactly one wins), and
	// durable when SeatInstance returns. Without a limit a key keeps at most
	// MaxInstancesLimit instances: the one seen least recently is forgotten
	// to make room. A missing key gives ErrKeyNotFound.
	SeatInstance(ctx context.Context, keyID string, inst Instance, limit int, lease time.Duration) (seated int, added bool, err error)
	// Instances returns the key's instances that hold a seat at now (seen
	// less than lease before it), most recently seen first, as copies. A
	// key without any gives an empty, non-nil slice; a missing key
	// ErrKeyNotFound.
	Instances(ctx context.Context, keyID string, now time.Time, lease time.Duration) ([]Instance, error)
	// ReleaseInstance forgets the key's instance, durably: its seat is free
	// when ReleaseInstance returns, for every process that shares the store.
	// An instance the key does not have (or no longer remembers) gives
	// ErrInstanceNotFound, a missing key ErrKeyNotFound.
	ReleaseInstance(ctx context.Context, keyID, instanceID string) error
}

// ValidKeyID reports whether id is a key id as stores accept it: the
// canonical lower-case, hyphenated form of a UUID.
func ValidKeyID(id string) bool {
	_, ok := parseKeyID(id)
	return ok
}

// ValidExpiry reports whether t is an expiry as stores accept it (a key's
// ExpiresAt, RotateKey's oldEndsAt): the zero time (never), or an instant
// after the Unix epoch and before 2262-04-11T23:47:16.854775807Z, the
// range of Unix nanoseconds, in which every store keeps it to the
// microsecond at least (the Service gives whole seconds).
func ValidExpiry(t time.Time) bool {
	return t.IsZero() || t.After(importFrom) && t.Before(importUntil)
}

// parseKeyID accepts only the canonical lower-case form of a UUID.
func parseKeyID(id string) (uuid.UUID, bool) {
	if len(id) != 36 {
		return uuid.UUID{}, false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return uuid.UUID{}, false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return uuid.UUID{}, false
			}
		}
	}
	u, err := uuid.Parse(id)
	return u, err == nil
}

// KeyCursor is a position in an organization's key list: the list goes on
// with the keys that sort after a key created at CreatedAt with ID, newest
// first. The zero KeyCursor is the start of the list.
type KeyCursor struct {
	CreatedAt time.Time
	ID        string
}

// IsZero reports whether c is the start of the list.
func (c KeyCursor) IsZero() bool { return c.CreatedAt.IsZero() && c.ID == "" }

// Cursor returns the position in the key list right after k.
func (k Key) Cursor() KeyCursor { return KeyCursor{CreatedAt: k.CreatedAt, ID: k.ID} }

// Key is a stored license key. It never holds the key itself: only its
// lookup value, digest and masked form.
type Key struct {
	ID              string // UUIDv7, lower case
	OrganizationID  string
	LookupValue     string // unique; see Hasher
	Digest          string // see Hasher
	MaskedKey       string // first 8 + "..." + last 8 characters
	InstanceName    string // "" when not given
	InstanceURL     string // "" until a validation reports one
	Active          bool   // false once revoked, for ever
	CreatedAt       time.Time
	ActivatedAt     time.Time // first successful validation; zero before
	LastValidatedAt time.Time // zero before the first validation
	RevokedAt       time.Time // zero while active
	ExpiresAt       time.Time // zero: never expires; see Service.SetKeyExpiry
	RotatedTo       string    // id of the key that replaced this one (Store.RotateKey); "" if none
	RotatedFrom     string    // id of the key this one replaced; "" if none
	LastMetrics     map[string]float64
	LastViolations  []string
	// MaxInstances limits how many instances may hold a seat on the key
	// (Store.SeatInstance); 0: the plan's maxInstancesPerKey feature, or
	// no limit when the plan has none.
	MaxInstances int
}

// ApplyValidation updates k with r as every Store must: LastValidatedAt
// becomes the later of the two, ActivatedAt is set only if it was zero, and
// the instance fields, metrics and violations are replaced when r has them.
// Active and RevokedAt are never touched.
func (k *Key) ApplyValidation(r ValidationRecord) {
	if r.At.After(k.LastValidatedAt) {
		k.LastValidatedAt = r.At
	}
	if k.ActivatedAt.IsZero() {
		k.ActivatedAt = r.FirstAt
		if k.ActivatedAt.IsZero() {
			k.ActivatedAt = r.At
		}
	}
	if r.InstanceName != "" {
		k.InstanceName = r.InstanceName
	}
	if r.InstanceURL != "" {
		k.InstanceURL = r.InstanceURL
	}
	if r.Metrics != nil {
		k.LastMetrics = r.Metrics
	}
	if r.Violations != nil {
		k.LastViolations = r.Violations
	}
}
