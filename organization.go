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
