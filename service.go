package licensing

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"
)

// Policy is the part of Config that may change while the Service runs (see
// Service.SetPolicy).
type Policy struct {
	// RequiredFeature, when set, is a plan feature that must be true (or a
	// non-zero number) for the organization to create keys, obtain tokens
	// and pass validation; for example "selfHostingLicense".
	RequiredFeature string
	// BillingURL is sent to instances so they can point people at upgrades.
	BillingURL string
	// Limits maps reported metric names to the plan features that limit
	// them. Nil means DefaultLimits; an empty map means no limits.
	Limits map[string]string
	// Issuer is the iss claim of offline tokens, which clients check.
	// Required: New and SetPolicy refuse an empty one.
	Issuer string
}

// Config configures a Service. New fills in the defaults documented on each
// field; the zero value of an optional field means its default.
type Config struct {
	Policy

	Store         Store         // required
	Organizations Organizations // required
	// Hasher turns keys into stored digests. Default: an HMACHasher keyed
	// with Pepper.
	Hasher Hasher
	// Pepper is the server secret of the default Hasher, at least
	// MinPepperLength bytes. Required unless Hasher is set.
	Pepper []byte

	// Signing signs offline tokens, validation answers to requests with a
	// nonce, and revocation lists. Default: a fresh Ed25519 key made by New,
	// which lives only as long as the process; production services load
	// persistent keys (ParsePrivateKeyPEM, NewSigningKeys).
	Signing *SigningKeys
	// TokenLifetime is how long an offline token is valid. Default one year.
	TokenLifetime time.Duration
	// CapTokensAtPeriodEnd, when set, ends offline tokens no later than the
	// organization's CurrentPeriodEnd plus TokenPeriodGrace.
	CapTokensAtPeriodEnd bool
	TokenPeriodGrace     time.Duration

	// OnEvent, when set, is called synchronously for every Event; it must
	// be quick and must not call back into the Service.
	OnEvent func(context.Context, Event)
	// Logger receives background errors (failed batch writes). Default slog.Default().
	Logger *slog.Logger
	// Observer, when set, receives validation outcomes, and, from a
	// Handler built on this Service, requests (see Observer).
	Observer Observer

	// FlushInterval is how often batched validation records are written.
	// Default 1s.
	FlushInterval time.Duration
	// SharingWindow is how close together two instance ids must validate one
	// key for it to count as shared. Default 24h.
	SharingWindow time.Duration

	// Now and Random exist for tests. Defaults time.Now and crypto/rand.Reader.
	Now    func() time.Time
	Random io.Reader
}

// Service implements the key lifecycle. Create it with New; it is safe for
// concurrent use. Close it to flush batched validation records.
type Service struct {
	cfg    Config
	policy atomic.Pointer[Policy]
	rec    *recorder
	shared *sharingTracker
}

// New returns a Service for cfg with defaults filled in. A missing Store or
// Organizations, or a missing or short Pepper without a Hasher, is an error.
// It starts the background writer of validation records; stop it with Close.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, configError("Config.Store is nil")
	}
	if cfg.Organizations == nil {
		return nil, configError("Config.Organizations is nil")
	}
	if cfg.Issuer == "" {
		return nil, configError("Config.Issuer is empty: offline tokens would carry no issuer and clients would reject them")
	}
	if cfg.Hasher == nil {
		h, err := NewHMACHasher(cfg.Pepper)
		if err != nil {
			return nil, err
		}
		cfg.Hasher = h
	}
	cfg.Pepper = nil // the hasher holds its own copy
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.SharingWindow <= 0 {
		cfg.SharingWindow = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Signing == nil {
		k, err := GenerateSigningKeys(0)
		if err != nil {
			return nil, &Error{Code: CodeInternal, Message: "Could not generate a signing key.", Err: err}
		}
		cfg.Signing = k
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = 365 * 24 * time.Hour
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	s := &Service{cfg: cfg, shared: newSharingTracker(cfg.SharingWindow, 1_000_000)}
	if err := s.SetPolicy(cfg.Policy); err != nil {
		return nil, err
	}
	s.rec = newRecorder(cfg.Store, cfg.FlushInterval, cfg.Logger)
	return s, nil
}

// SetPolicy replaces the service's Policy; calls that start afterwards use
// it. A Policy without an Issuer is refused and the current one kept.
func (s *Service) SetPolicy(p Policy) error {
	if p.Issuer == "" {
		return configError("Policy.Issuer is empty")
	}
	if p.Limits == nil {
		p.Limits = DefaultLimits
	}
	p.Limits = maps.Clone(p.Limits)
	s.policy.Store(&p)
	return nil
}

// Flush writes the pending validation records to the store now.
func (s *Service) Flush(ctx context.Context) error { return s.rec.flush(ctx) }

// Close stops the background writer and flushes what is pending. The
// Service must not be used afterwards.
func (s *Service) Close(ctx context.Context) error { return s.rec.close(ctx) }

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

func (s *Service) emit(ctx context.Context, e Event) {
	if s.cfg.Observer != nil {
		s.observeEvent(&e)
	}
	if s.cfg.OnEvent != nil {
		if e.Time.IsZero() {
			e.Time = s.now()
		}
		s.cfg.OnEvent(ctx, e)
	}
}

// owner returns the actor's organization after checking that the actor owns
// it; with credential set it also checks that the organization may be handed
// a new credential (active, eligible plan).
func (s *Service) owner(ctx context.Context, a Actor, credential bool) (Organization, error) {
	if a.UserID == "" {
		return Organization{}, ErrUnauthorized
	}
	if a.OrganizationID == "" {
		return Organization{}, ErrOrgNotFound
	}
	org, err := s.cfg.Organizations.Organization(ctx, a.OrganizationID)
	if err != nil {
		if errors.Is(err, ErrOrgNotFound) {
			return Organization{}, ErrOrgNotFound
		}
		return Organization{}, wrapErr("find organization", err)
	}
	if org.OwnerID == "" || org.OwnerID != a.UserID {
		return Organization{}, ErrNotOwner
	}
	if credential {
		if err := s.eligible(org); err != nil {
			return Organization{}, err
		}
	}
	return org, nil
}

// eligible checks what any new credential or successful validation needs.
func (s *Service) eligible(org Organization) error {
	if !org.Active {
		return ErrOrgInactive
	}
	if f := s.policy.Load().RequiredFeature; f != "" && !featureEnabled(org.Features[f]) {
		plan := org.Plan
		if plan == "" {
			plan = "current"
		}
		return &Error{Code: CodePlanNotEligible,
			Message: fmt.Sprintf("The %s plan does not include self-hosted licenses; please upgrade your plan.", plan)}
	}
	return nil
}
