package licensing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"time"
)

// ValidateInput is what a self-hosted instance sends.
type ValidateInput struct {
	LicenseKey   string
	InstanceName string // optional, at most 255 characters
	InstanceURL  string // optional absolute http(s) URL, at most 2,048 characters
	// InstanceID is an optional random id the instance keeps: the instance
	// is counted under it (see Instance.ID), else under its InstanceURL
	// normalized, else not at all.
	InstanceID string
	Metrics    map[string]float64 // optional, at most 32 counters
}

// ValidationResult is the answer to a validation. On a plan that is not
// eligible, ValidateKey returns it with Valid false, Plan and BillingURL set,
// together with an error of code CodePlanNotEligible.
type ValidationResult struct {
	Valid            bool
	KeyID            string
	Plan             string
	Features         map[string]any
	OrganizationID   string
	OrganizationName string
	Violations       []string // never nil when Valid
	CurrentPeriodEnd time.Time
	TrialEndsAt      time.Time // zero unless a trial runs
	TrialDaysLeft    int       // days rounded up; meaningful when TrialEndsAt is set
	BillingURL       string
	// ExpiresAt is the key's expiry, zero when it never expires. With
	// ErrKeyExpired, ValidateKey returns it (and KeyID) too.
	ExpiresAt time.Time
}

// ValidateKey checks a license key presented by a self-hosted instance and
// returns the organization's plan as it is now. A key that is not 64 hex
// characters is rejected without store access; unknown, mistyped (bad
// checksum) and revoked keys all give ErrInvalidLicense after the same
// work, so their answers cannot be told apart by time either. A real key
// past its ExpiresAt gives ErrKeyExpired, with KeyID and ExpiresAt set in
// the result (a holder of the key learns when it expired). A key whose
// checksum fails but whose record is in the store is valid: the seed
// system issued 64 random hex characters without a checksum, and such keys
// keep working once their records are migrated (ImportKey). A success is
// recorded (last validated time, instance fields, metrics) through a batch
// that the answer never waits for.
//
// An instance that sends an InstanceID or an InstanceURL takes a seat on
// the key (Store.SeatInstance, for Config.InstanceLease); one beyond the
// key's limit (Key.MaxInstances, else the plan's numeric maxInstancesPerKey
// feature) gets an error of code CodeForbidden wrapping ErrSeatLimit, whose
// message names the limit. A key held by more than one instance says so in
// the violations recorded for its owner (not in the instance's answer).
// An error of the store while seating fails the validation.
func (s *Service) ValidateKey(ctx context.Context, in ValidateInput) (ValidationResult, error) {
	if strings.TrimSpace(in.LicenseKey) == "" {
		return ValidationResult{}, errLicenseKeyRequired
	}
	if err := checkValidateInput(in); err != nil {
		return ValidationResult{}, err
	}
	// Unknown, mistyped (bad checksum) and revoked keys take one path up to
	// the answer: one lookup, one constant-time comparison (against a
	// dummy digest on a miss), and an event queued off the request path.
	full, checksumOK, err := parseKey(in.LicenseKey)
	if err != nil {
		return s.reject(ctx, OutcomeMalformed, nil) // not 64 hex characters: nothing to look up
	}
	k, found, match, err := s.findKey(ctx, full)
	if err != nil {
		return ValidationResult{}, err
	}
	switch {
	case (!found || !match) && !checksumOK:
		return s.reject(ctx, OutcomeMalformed, nil)
	case !found || !match:
		return s.reject(ctx, OutcomeUnknown, nil)
	case !k.Active:
		return s.reject(ctx, OutcomeRevoked, &k)
	}
	now := s.now()
	if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		return s.rejectExpired(ctx, &k) // told only to a holder of the real key
	}
	org, err := s.cfg.Organizations.Organization(ctx, k.OrganizationID)
	if errors.Is(err, ErrOrgNotFound) {
		return s.reject(ctx, OutcomeInactive, &k)
	}
	if err != nil {
		return ValidationResult{}, wrapErr("find organization", err)
	}
	policy := s.policy.Load()
	if err := s.eligible(org, policy.ValidateNotEligibleMessage); err != nil {
		if ErrorCode(err) != CodePlanNotEligible {
			s.emitLater(ctx, failed(OutcomeInactive, &k))
			return ValidationResult{}, err
		}
		s.emitLater(ctx, failed(OutcomeNotEligible, &k))
		return ValidationResult{Plan: org.Plan, BillingURL: policy.BillingURL}, err
	}

	res := ValidationResult{
		Valid:            true,
		KeyID:            k.ID,
		Plan:             org.Plan,
		Features:         org.Features,
		OrganizationID:   org.ID,
		OrganizationName: org.Name,
		Violations:       violations(policy.Limits, org, in.Metrics),
		CurrentPeriodEnd: org.CurrentPeriodEnd,
		BillingURL:       policy.BillingURL,
		ExpiresAt:        k.ExpiresAt,
	}
	if res.Features == nil {
		res.Features = map[string]any{}
	}
	if org.TrialEndsAt.After(now) {
		res.TrialEndsAt = org.TrialEndsAt
		res.TrialDaysLeft = int(math.Ceil(org.TrialEndsAt.Sub(now).Hours() / 24))
	}

	keyViolations := res.Violations
	instanceID := instanceIdentity(in.InstanceID, in.InstanceURL)
	if instanceID != "" {
		seated, err := s.seat(ctx, &k, org, in, instanceID, now)
		if err != nil {
			return ValidationResult{}, err
		}
		if seated > 1 {
			keyViolations = append(append([]string(nil), res.Violations...),
				fmt.Sprintf("This license key is shared by %d instances within %s.", seated, humanDuration(s.cfg.InstanceLease)))
		}
	}
	if k.ActivatedAt.IsZero() && s.activated.first(k.ID) { // once per key, also before the batch records its ActivatedAt
		s.emitLater(ctx, Event{Type: EventKeyActivated, Time: now, KeyID: k.ID,
			OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey, InstanceID: instanceID})
	}
	// The record needs a copy of the metrics the caller may change; when
	// they are the key's last ones, the store's copy in k will do (no one
	// changes it in place: the store and the recorder replace maps).
	metrics := k.LastMetrics
	if in.Metrics == nil || metrics == nil || !maps.Equal(metrics, in.Metrics) {
		metrics = maps.Clone(in.Metrics)
	}
	s.rec.add(ValidationRecord{KeyID: k.ID, InstanceID: instanceID, FirstAt: now, At: now, InstanceName: in.InstanceName,
		InstanceURL: in.InstanceURL, Metrics: metrics, Violations: keyViolations})
	s.emitLater(ctx, Event{Type: EventKeyValidated, Time: now, KeyID: k.ID,
		OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey})
	return res, nil
}

// findKey looks the key full up in the store and verifies it against the
// stored digest, or against a dummy digest when the key is not found, so
// that unknown keys cost the same work as known ones.
func (s *Service) findKey(ctx context.Context, full string) (k Key, found, match bool, err error) {
	ms, mem := s.cfg.Store.(*MemoryStore)
	if h, ok := s.cfg.Hasher.(*hmacHasher); ok && mem {
		// Special case for speed: the memory store indexes HMAC lookup
		// values by their 32 bytes, so the sum is looked up as it is, with
		// no hex string made, and the store lends its metrics and
		// violations (two allocations fewer).
		var sum [sha256.Size]byte
		h.sum(full, &sum)
		var lookup [2 * sha256.Size]byte
		hex.Encode(lookup[:], sum[:])
		k, found = ms.keyForValidation(lookupIndex(sum), "")
		digest := k.Digest
		if !found {
			digest = s.dummy
		}
		return k, found, constantTimeEqual(lookup[:], digest), nil
	}
	lookup := s.cfg.Hasher.LookupValue(full)
	if mem {
		k, found = ms.keyForValidation(indexOf(lookup), lookup) // its metrics are only read, and handed back
	} else {
		k, err = s.cfg.Store.KeyByLookup(ctx, lookup)
		found = err == nil
		if err != nil && !errors.Is(err, ErrKeyNotFound) {
			return Key{}, false, false, wrapErr("find key", err)
		}
	}
	digest := k.Digest
	if !found {
		digest = s.dummy
	}
	return k, found, verifyKey(s.cfg.Hasher, full, lookup, digest), nil
}

// reject answers a validation that failed with outcome with
// ErrInvalidLicense, queuing its event off the request path.
func (s *Service) reject(ctx context.Context, outcome Outcome, k *Key) (ValidationResult, error) {
	s.emitLater(ctx, failed(outcome, k))
	return ValidationResult{}, ErrInvalidLicense
}

func failed(outcome Outcome, k *Key) Event {
	e := Event{Type: EventValidationFailed, Outcome: outcome}
	if k != nil {
		e.KeyID, e.OrganizationID, e.MaskedKey = k.ID, k.OrganizationID, k.MaskedKey
	}
	return e
}
