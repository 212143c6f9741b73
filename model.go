package licensing

import (
	"context"
	"time"
)

// Actor is the user behind an owner request and the organization it acts
// for, as resolved by an Authenticator.
type Actor struct {
	UserID         string
	OrganizationID string
}

// Organization is what the embedding application knows of a customer
// organization. The library reads it at the moment of every call, so plan
// changes show on the next validation.
type Organization struct {
	ID      string
	Name    string
	OwnerID string // the only user who may manage the organization's keys
	Plan    string
	// Features holds the plan's features: booleans (for example
	// "selfHostingLicense": true) and numeric limits (for example
	// "maxCompanies": 10, where 0 means unlimited).
	Features         map[string]any
	Active           bool
	CurrentPeriodEnd time.Time // zero when the organization has none
	TrialEndsAt      time.Time // zero when there is no trial
}

// Organizations gives the Service read access to the embedding application's
// organizations. Implementations must be safe for concurrent use.
type Organizations interface {
	// Organization returns the organization with id. It returns an error
	// for which errors.Is(err, ErrOrgNotFound) holds when there is none.
	Organization(ctx context.Context, id string) (Organization, error)
}

// OrganizationsFunc adapts a function to Organizations.
type OrganizationsFunc func(ctx context.Context, id string) (Organization, error)

// Organization calls f(ctx, id).
func (f OrganizationsFunc) Organization(ctx context.Context, id string) (Organization, error) {
	return f(ctx, id)
}

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
}

// ValidationRecord is what one or more successful validations of a key leave
// behind. The Service batches them (see Store.RecordValidations).
type ValidationRecord struct {
	KeyID        string
	FirstAt      time.Time          // earliest validation in the batch; sets ActivatedAt
	At           time.Time          // latest validation in the batch
	InstanceName string             // "" leaves the key's value unchanged
	InstanceURL  string             // "" leaves the key's value unchanged
	Metrics      map[string]float64 // nil leaves the key's value unchanged
	Violations   []string           // nil leaves the key's value unchanged
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

// merge folds a later record of the same key into r.
func (r *ValidationRecord) merge(later ValidationRecord) {
	if r.FirstAt.IsZero() || (!later.FirstAt.IsZero() && later.FirstAt.Before(r.FirstAt)) {
		r.FirstAt = later.FirstAt
	}
	if later.At.After(r.At) {
		r.At = later.At
	}
	if later.InstanceName != "" {
		r.InstanceName = later.InstanceName
	}
	if later.InstanceURL != "" {
		r.InstanceURL = later.InstanceURL
	}
	if later.Metrics != nil {
		r.Metrics = later.Metrics
	}
	if later.Violations != nil {
		r.Violations = later.Violations
	}
}

// EventType names what happened.
type EventType string

// Event types.
const (
	EventKeyCreated       EventType = "key.created"
	EventKeyRevoked       EventType = "key.revoked"
	EventKeyValidated     EventType = "key.validated"
	EventValidationFailed EventType = "key.validation_failed"
	EventKeyShared        EventType = "key.shared"
	EventTokenIssued      EventType = "key.token_issued"
	EventKeyRotated       EventType = "key.rotated"
	EventKeyRenewed       EventType = "key.renewed"
	EventKeyExpired       EventType = "key.expired" // the first validation refused as expired
)

// Reasons carried by EventValidationFailed.
const (
	ReasonMalformed       = "malformed" // ParseKey rejected the key
	ReasonUnknown         = "unknown"   // no such key
	ReasonRevoked         = "revoked"   // the key was revoked
	ReasonExpired         = "expired"   // the key is past its ExpiresAt
	ReasonOrgNotFound     = "organization_not_found"
	ReasonOrgInactive     = "organization_inactive"
	ReasonPlanNotEligible = "plan_not_eligible"
)

// Event tells Config.OnEvent what happened. It carries ids and masked keys
// only, never a full key or token.
type Event struct {
	Type           EventType
	Time           time.Time
	KeyID          string
	OrganizationID string
	MaskedKey      string
	UserID         string // the actor, for owner actions
	Reason         string // for EventValidationFailed
	InstanceCount  int    // for EventKeyShared: distinct instances in the window
	// ExpiresAt is the key's expiry (zero: never) for EventKeyRenewed,
	// EventKeyExpired and EventKeyRotated (then: when the old key stops).
	ExpiresAt time.Time
	RotatedTo string // for EventKeyRotated: the new key's id
}
