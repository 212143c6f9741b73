// Package licensing issues license keys to the self-hosted copies of a SaaS
// product and answers their validation calls.
//
// An organization owner creates a key (Service.CreateKey, or POST
// /api/v1/licensing/keys through NewHandler); the self-hosted instance sends
// it to POST /api/v1/licensing/validate and learns its plan, features, trial
// and billing period. The owner lists and revokes keys. The embedding
// application supplies who its users and organizations are (Authenticator,
// Organizations); this package owns the keys (Store).
//
// # Embedding
//
//	hasher, _ := licensing.NewHMACHasher(pepper) // pepper: >= 32 secret bytes
//	svc, err := licensing.New(licensing.Config{
//		Store:         licensing.NewMemoryStore(),
//		Organizations: myOrgs, // implements licensing.Organizations
//		Hasher:        hasher,
//		Policy:        licensing.Policy{RequiredFeature: "selfHostingLicense"},
//	})
//	if err != nil { ... }
//	defer svc.Close(context.Background())
//	mux.Handle("/api/v1/licensing/", licensing.NewHandler(svc, myAuth))
//
// # Security model
//
// A full license key exists only in the answer that creates it; stores keep a
// lookup value and a digest (HMAC-SHA-256 under a server pepper by default,
// Argon2id optionally), and lists, events, logs and errors show masked keys
// only. Keys carry a CRC-32 checksum, so mistyped or invented keys are
// rejected before any store access, and digests are compared in constant
// time. Every input is bounded: body size, field lengths, number of metrics,
// and the rate limiter's memory.
package licensing

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Code classifies an Error. Each code maps to one HTTP status in the handler
// (see StatusCode).
type Code string

// Error codes.
const (
	CodeInvalid          Code = "invalid"            // 400: bad input
	CodeUnauthorized     Code = "unauthorized"       // 401: missing or unknown credentials
	CodeInvalidLicense   Code = "invalid_license"    // 401 from validate: unknown, malformed or revoked key
	CodeForbidden        Code = "forbidden"          // 403: not allowed for this actor
	CodeInactive         Code = "inactive"           // 403: organization deactivated
	CodePlanNotEligible  Code = "plan_not_eligible"  // 403: plan lacks the required feature
	CodeNotFound         Code = "not_found"          // 404
	CodeMethodNotAllowed Code = "method_not_allowed" // 405
	CodeConflict         Code = "conflict"           // 409: duplicate id or lookup value
	CodeTooLarge         Code = "too_large"          // 413
	CodeUnsupportedMedia Code = "unsupported_media"  // 415
	CodeRateLimited      Code = "rate_limited"       // 429
	CodeInternal         Code = "internal"           // 500
	CodeUnavailable      Code = "unavailable"        // 503: the store refuses writes
)

var statusByCode = map[Code]int{
	CodeInvalid:          http.StatusBadRequest,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeInvalidLicense:   http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodeInactive:         http.StatusForbidden,
	CodePlanNotEligible:  http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeConflict:         http.StatusConflict,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	CodeRateLimited:      http.StatusTooManyRequests,
	CodeInternal:         http.StatusInternalServerError,
	CodeUnavailable:      http.StatusServiceUnavailable,
}

// Error is the one error type of this package. Message is safe to show to
// the caller of the HTTP API; Err, when set, is the cause and is only logged.
// No Error ever holds a full license key or a token.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "licensing: " + e.Message + ": " + e.Err.Error()
	}
	return "licensing: " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-safe message of err: the Message of its
// *Error, or a generic sentence for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// StatusCode returns the HTTP status for err (500 for errors of no known code).
func StatusCode(err error) int {
	if s, ok := statusByCode[ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Errors the Service and stores return. Compare with errors.Is.
var (
	ErrUnauthorized       = &Error{Code: CodeUnauthorized, Message: "Missing or invalid token."}
	ErrOrgNotFound        = &Error{Code: CodeNotFound, Message: "Organization not found."}
	ErrNotOwner           = &Error{Code: CodeForbidden, Message: "Only the organization owner can manage license keys."}
	ErrOrgInactive        = &Error{Code: CodeInactive, Message: "Organization is inactive"}
	ErrKeyNotFound        = &Error{Code: CodeNotFound, Message: "License key not found."}
	ErrDuplicateKey       = &Error{Code: CodeConflict, Message: "A license key with this id or lookup value exists."}
	ErrLicenseKeyRequired = &Error{Code: CodeInvalid, Message: "licenseKey is required"}
	// ErrInvalidLicense is the one answer for a key that is unknown,
	// malformed, mistyped or revoked, so callers cannot tell them apart.
	ErrInvalidLicense = &Error{Code: CodeInvalidLicense, Message: "Invalid or revoked license key"}
	ErrRateLimited    = &Error{Code: CodeRateLimited, Message: "Too many requests."}
	// ErrStoreFailed is returned by a store that hit a write or fsync error
	// and now refuses writes; reads keep working.
	ErrStoreFailed = &Error{Code: CodeUnavailable, Message: "The license store is unavailable for writes."}
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
)

// Reasons carried by EventValidationFailed.
const (
	ReasonMalformed       = "malformed" // ParseKey rejected the key
	ReasonUnknown         = "unknown"   // no such key
	ReasonRevoked         = "revoked"   // the key was revoked
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
}

// DefaultLimits is the metric → plan feature map used when Policy.Limits is nil.
var DefaultLimits = map[string]string{
	"companyCount":      "maxCompanies",
	"userCount":         "maxUsersPerOrg",
	"invoicesThisMonth": "maxInvoicesPerMonth",
	"orgCount":          "maxOrganizations",
}

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
	// Issuer is the iss claim of offline tokens.
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

	// FlushInterval is how often batched validation records are written.
	// Default 1s.
	FlushInterval time.Duration
	// SharingWindow is how close together two instance ids must validate one
	// key for it to count as shared. Default 24h.
	SharingWindow time.Duration

	// RateLimit is the validations per minute allowed per client address by
	// the HTTP handler; RateBurst the bucket size. Defaults 30 and 30; a
	// negative RateLimit turns the limiter off.
	RateLimit, RateBurst int
	// MaxTrackedClients bounds the rate limiter's memory: at most about
	// twice this many addresses are remembered. Default 100,000.
	MaxTrackedClients int
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed. Default none: the client address is the TCP peer.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds request bodies. Default 64 KiB.
	MaxBodyBytes int64

	// Now and Random exist for tests. Defaults time.Now and crypto/rand.Reader.
	Now    func() time.Time
	Random io.Reader
}

// Input bounds.
const (
	MaxInstanceNameLength = 255
	MaxInstanceURLLength  = 2048
	MaxInstanceIDLength   = 128
	MaxMetrics            = 32
	MaxMetricNameLength   = 64
)

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
		return nil, errors.New("licensing: Config.Store is nil")
	}
	if cfg.Organizations == nil {
		return nil, errors.New("licensing: Config.Organizations is nil")
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
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 30
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 30
	}
	if cfg.MaxTrackedClients <= 0 {
		cfg.MaxTrackedClients = 100_000
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Signing == nil {
		k, err := GenerateSigningKeys(0)
		if err != nil {
			return nil, fmt.Errorf("licensing: signing key: %w", err)
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
	s.SetPolicy(cfg.Policy)
	s.rec = newRecorder(cfg.Store, cfg.FlushInterval, cfg.Logger)
	return s, nil
}

// SetPolicy replaces the service's Policy; calls that start afterwards use it.
func (s *Service) SetPolicy(p Policy) {
	if p.Limits == nil {
		p.Limits = DefaultLimits
	}
	p.Limits = cloneMap(p.Limits)
	s.policy.Store(&p)
}

// Flush writes the pending validation records to the store now.
func (s *Service) Flush(ctx context.Context) error { return s.rec.flush(ctx) }

// Close stops the background writer and flushes what is pending. The
// Service must not be used afterwards.
func (s *Service) Close(ctx context.Context) error { return s.rec.close(ctx) }

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

func (s *Service) emit(ctx context.Context, e Event) {
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
		return Organization{}, fmt.Errorf("licensing: find organization: %w", err)
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
	if err := checkText("instanceName", in.InstanceName, MaxInstanceNameLength); err != nil {
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
			return CreatedKey{}, fmt.Errorf("licensing: store key: %w", err)
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
		return nil, fmt.Errorf("licensing: list keys: %w", err)
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
		return fmt.Errorf("licensing: revoke key: %w", err)
	}
	s.emit(ctx, Event{Type: EventKeyRevoked, Time: k.RevokedAt, KeyID: k.ID,
		OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey, UserID: a.UserID})
	return nil
}

// IssuedToken is an offline license token.
type IssuedToken struct {
	JWT       string
	ExpiresAt time.Time
	Plan      string
}

// TokenClaims are the claims of an offline token, exactly these and in this
// order.
type TokenClaims struct {
	Issuer           string         `json:"iss"`
	Subject          string         `json:"sub"` // organization id
	Plan             string         `json:"plan"`
	Features         map[string]any `json:"features"`
	OrganizationName string         `json:"orgName"`
	IssuedAt         int64          `json:"iat"`
	ExpiresAt        int64          `json:"exp"`
	ID               string         `json:"jti"` // the license key's id
}

// ErrKeyRevoked is returned when a token is asked for a revoked key.
var ErrKeyRevoked = &Error{Code: CodeForbidden, Message: "License key is revoked."}

// IssueToken signs an offline token for key id of the actor's organization,
// with alg AlgRS256 or AlgEdDSA ("" picks RS256 when an RSA key is
// configured, else EdDSA). The actor must own the organization, which must be
// active with an eligible plan; a revoked key gives ErrKeyRevoked, an
// unknown key ErrKeyNotFound.
func (s *Service) IssueToken(ctx context.Context, a Actor, id, alg string) (IssuedToken, error) {
	signing := s.cfg.Signing
	switch alg {
	case "":
		alg = AlgEdDSA
		if signing.HasRSA() {
			alg = AlgRS256
		}
	case AlgEdDSA:
	case AlgRS256:
		if !signing.HasRSA() {
			return IssuedToken{}, &Error{Code: CodeInvalid, Message: "alg RS256 is not available: no RSA signing key is configured"}
		}
	default:
		return IssuedToken{}, &Error{Code: CodeInvalid, Message: "alg must be RS256 or EdDSA"}
	}
	org, err := s.owner(ctx, a, true)
	if err != nil {
		return IssuedToken{}, err
	}
	k, err := s.orgKey(ctx, org.ID, id)
	if err != nil {
		return IssuedToken{}, err
	}
	if !k.Active {
		return IssuedToken{}, ErrKeyRevoked
	}
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.cfg.TokenLifetime)
	if s.cfg.CapTokensAtPeriodEnd && !org.CurrentPeriodEnd.IsZero() {
		if end := org.CurrentPeriodEnd.Add(s.cfg.TokenPeriodGrace); end.Before(exp) {
			exp = end.UTC().Truncate(time.Second)
		}
		if !exp.After(now) {
			return IssuedToken{}, &Error{Code: CodePlanNotEligible, Message: "The billing period has ended; please renew your plan."}
		}
	}
	features := org.Features
	if features == nil {
		features = map[string]any{}
	}
	jwt, err := signing.signJWT(alg, TokenClaims{Issuer: s.policy.Load().Issuer, Subject: org.ID, Plan: org.Plan,
		Features: features, OrganizationName: org.Name, IssuedAt: now.Unix(), ExpiresAt: exp.Unix(), ID: k.ID})
	if err != nil {
		return IssuedToken{}, &Error{Code: CodeInternal, Message: "Could not sign the token.", Err: err}
	}
	s.emit(ctx, Event{Type: EventTokenIssued, Time: now, KeyID: k.ID, OrganizationID: org.ID,
		MaskedKey: k.MaskedKey, UserID: a.UserID})
	return IssuedToken{JWT: jwt, ExpiresAt: exp, Plan: org.Plan}, nil
}

// RevokedKeyIDs returns the ids of the organization's revoked keys, sorted.
// An unknown organization has none. It checks nobody: key ids are not
// secrets, and self-hosted instances read this list with no credential.
func (s *Service) RevokedKeyIDs(ctx context.Context, orgID string) ([]string, error) {
	keys, err := s.cfg.Store.ListKeys(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("licensing: list keys: %w", err)
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
		return Key{}, fmt.Errorf("licensing: find key: %w", err)
	}
	return k, nil
}

// ValidateInput is what a self-hosted instance sends.
type ValidateInput struct {
	LicenseKey   string
	InstanceName string             // optional, at most 255 characters
	InstanceURL  string             // optional absolute http(s) URL, at most 2,048 characters
	InstanceID   string             // optional random id the instance keeps; detects sharing
	Metrics      map[string]float64 // optional, at most 32 counters
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
}

// ValidateKey checks a license key presented by a self-hosted instance and
// returns the organization's plan as it is now. Malformed keys are rejected
// without store access; unknown, mistyped and revoked keys all give
// ErrInvalidLicense. A success is recorded (last validated time, instance
// fields, metrics) through a batch that the answer never waits for.
func (s *Service) ValidateKey(ctx context.Context, in ValidateInput) (ValidationResult, error) {
	if strings.TrimSpace(in.LicenseKey) == "" {
		return ValidationResult{}, ErrLicenseKeyRequired
	}
	if err := checkValidateInput(in); err != nil {
		return ValidationResult{}, err
	}
	fail := func(reason string, k *Key, err error) (ValidationResult, error) {
		e := Event{Type: EventValidationFailed, Reason: reason}
		if k != nil {
			e.KeyID, e.OrganizationID, e.MaskedKey = k.ID, k.OrganizationID, k.MaskedKey
		}
		s.emit(ctx, e)
		return ValidationResult{}, err
	}
	full, err := ParseKey(in.LicenseKey)
	if err != nil {
		return fail(ReasonMalformed, nil, ErrInvalidLicense)
	}
	k, err := s.cfg.Store.KeyByLookup(ctx, s.cfg.Hasher.LookupValue(full))
	if errors.Is(err, ErrKeyNotFound) {
		return fail(ReasonUnknown, nil, ErrInvalidLicense)
	}
	if err != nil {
		return ValidationResult{}, fmt.Errorf("licensing: find key: %w", err)
	}
	if !s.cfg.Hasher.Verify(full, k.Digest) {
		return fail(ReasonUnknown, nil, ErrInvalidLicense)
	}
	if !k.Active {
		return fail(ReasonRevoked, &k, ErrInvalidLicense)
	}
	org, err := s.cfg.Organizations.Organization(ctx, k.OrganizationID)
	if errors.Is(err, ErrOrgNotFound) {
		return fail(ReasonOrgNotFound, &k, ErrInvalidLicense)
	}
	if err != nil {
		return ValidationResult{}, fmt.Errorf("licensing: find organization: %w", err)
	}
	policy := s.policy.Load()
	if err := s.eligible(org); err != nil {
		if ErrorCode(err) == CodePlanNotEligible {
			fail(ReasonPlanNotEligible, &k, err)
			return ValidationResult{Plan: org.Plan, BillingURL: policy.BillingURL}, err
		}
		return fail(ReasonOrgInactive, &k, err)
	}

	now := s.now()
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
	}
	if res.Features == nil {
		res.Features = map[string]any{}
	}
	if org.TrialEndsAt.After(now) {
		res.TrialEndsAt = org.TrialEndsAt
		res.TrialDaysLeft = int(math.Ceil(org.TrialEndsAt.Sub(now).Hours() / 24))
	}

	keyViolations := res.Violations
	if in.InstanceID != "" {
		if n, grew := s.shared.seen(k.ID, in.InstanceID, now); n > 1 {
			keyViolations = append(append([]string(nil), res.Violations...),
				fmt.Sprintf("This license key is shared by %d instances within %s.", n, humanDuration(s.cfg.SharingWindow)))
			if grew {
				s.emit(ctx, Event{Type: EventKeyShared, Time: now, KeyID: k.ID,
					OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey, InstanceCount: n})
			}
		}
	}
	s.rec.add(ValidationRecord{KeyID: k.ID, FirstAt: now, At: now, InstanceName: in.InstanceName,
		InstanceURL: in.InstanceURL, Metrics: cloneMap(in.Metrics), Violations: keyViolations})
	s.emit(ctx, Event{Type: EventKeyValidated, Time: now, KeyID: k.ID,
		OrganizationID: k.OrganizationID, MaskedKey: k.MaskedKey})
	return res, nil
}

func checkValidateInput(in ValidateInput) error {
	if err := checkText("instanceName", in.InstanceName, MaxInstanceNameLength); err != nil {
		return err
	}
	if in.InstanceURL != "" {
		bad := &Error{Code: CodeInvalid, Message: "instanceUrl must be an absolute http or https URL of at most 2048 characters"}
		if len(in.InstanceURL) > MaxInstanceURLLength || !utf8.ValidString(in.InstanceURL) {
			return bad
		}
		u, err := url.Parse(in.InstanceURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad
		}
	}
	if in.InstanceID != "" {
		if len(in.InstanceID) > MaxInstanceIDLength || strings.IndexFunc(in.InstanceID, func(r rune) bool {
			return r <= ' ' || r > '~'
		}) >= 0 {
			return &Error{Code: CodeInvalid, Message: "instanceId must be at most 128 printable ASCII characters without spaces"}
		}
	}
	if len(in.Metrics) > MaxMetrics {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("metrics must have at most %d entries", MaxMetrics)}
	}
	for name, v := range in.Metrics {
		if name == "" || utf8.RuneCountInString(name) > MaxMetricNameLength || !utf8.ValidString(name) ||
			strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return &Error{Code: CodeInvalid, Message: fmt.Sprintf("metric names must be 1 to %d characters without control characters", MaxMetricNameLength)}
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &Error{Code: CodeInvalid, Message: "metrics must be finite numbers"}
		}
	}
	return nil
}

// checkText bounds a free-text field: valid UTF-8, at most max characters,
// no control characters.
func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("%s must be valid text of at most %d characters without control characters", field, max)}
	}
	return nil
}

// violations compares reported metrics with the plan's limits.
func violations(limits map[string]string, org Organization, metrics map[string]float64) []string {
	out := []string{}
	names := make([]string, 0, len(metrics))
	for name := range metrics {
		if _, ok := limits[name]; ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		feature := limits[name]
		limit, ok := featureNumber(org.Features[feature])
		if !ok || limit == 0 {
			continue // not a limit, or unlimited
		}
		if v := metrics[name]; v > limit {
			out = append(out, fmt.Sprintf("%s is %s, above the %s plan's limit of %s (%s).",
				name, formatNumber(v), org.Plan, formatNumber(limit), feature))
		}
	}
	return out
}

func featureEnabled(v any) bool {
	if b, ok := v.(bool); ok {
		return b
	}
	n, ok := featureNumber(v)
	return ok && n != 0
}

func featureNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case interface{ Float64() (float64, error) }: // json.Number
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func humanDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d == 24*time.Hour:
		return "one day"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	c := make(map[K]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// recorder batches validation records so that no validation waits on a
// store write.
type recorder struct {
	store    Store
	logger   *slog.Logger
	mu       sync.Mutex
	pending  map[string]ValidationRecord
	flushMu  sync.Mutex // one flush at a time, so records reach the store in order
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newRecorder(store Store, every time.Duration, logger *slog.Logger) *recorder {
	r := &recorder{store: store, logger: logger, pending: map[string]ValidationRecord{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop(every)
	return r
}

func (r *recorder) loop(every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			// Records stay pending while the store fails; say so once per
			// distinct error, not every tick.
			err := r.flush(context.Background())
			switch {
			case err != nil && err.Error() != lastErr:
				r.logger.Error("licensing: write validation records; keeping them pending", "err", err)
				lastErr = err.Error()
			case err == nil && lastErr != "":
				r.logger.Info("licensing: validation records written again")
				lastErr = ""
			}
		}
	}
}

func (r *recorder) add(v ValidationRecord) {
	r.mu.Lock()
	if old, ok := r.pending[v.KeyID]; ok {
		old.merge(v)
		v = old
	}
	r.pending[v.KeyID] = v
	r.mu.Unlock()
}

// overlay applies pending records to keys, so callers read their writes.
func (r *recorder) overlay(keys []Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		return
	}
	for i := range keys {
		if v, ok := r.pending[keys[i].ID]; ok {
			keys[i].ApplyValidation(v)
		}
	}
}

func (r *recorder) flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	batch := make([]ValidationRecord, 0, len(r.pending))
	for _, v := range r.pending {
		batch = append(batch, v)
	}
	r.mu.Unlock()
	// Records stay pending (visible to overlay) until written.
	err := r.store.RecordValidations(ctx, batch)
	if err != nil {
		return err
	}
	r.mu.Lock()
	for _, v := range batch {
		if cur, ok := r.pending[v.KeyID]; ok && cur.At.Equal(v.At) && cur.FirstAt.Equal(v.FirstAt) {
			delete(r.pending, v.KeyID)
		}
	}
	r.mu.Unlock()
	return nil
}

func (r *recorder) close(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	return r.flush(ctx)
}

// sharingTracker remembers, per key, the instance ids seen within a window.
// It holds at most maxKeys keys and 16 instance ids per key.
type sharingTracker struct {
	window  time.Duration
	maxKeys int
	mu      sync.Mutex
	keys    map[string][]instanceSeen
}

type instanceSeen struct {
	id   string
	last time.Time
}

const maxInstancesPerKey = 16

func newSharingTracker(window time.Duration, maxKeys int) *sharingTracker {
	return &sharingTracker{window: window, maxKeys: maxKeys, keys: map[string][]instanceSeen{}}
}

// seen records instance on key at now and returns how many distinct
// instances used the key within the window, and whether instance is new.
func (t *sharingTracker) seen(key, instance string, now time.Time) (n int, grew bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.keys[key]
	live := list[:0]
	found := false
	for _, s := range list {
		if s.id == instance {
			s.last, found = now, true
		}
		if now.Sub(s.last) <= t.window {
			live = append(live, s)
		}
	}
	if !found {
		if len(live) >= maxInstancesPerKey {
			live = live[1:]
		}
		live = append(live, instanceSeen{id: instance, last: now})
	}
	if _, ok := t.keys[key]; !ok && len(t.keys) >= t.maxKeys {
		for victim := range t.keys { // drop an arbitrary key to stay bounded
			delete(t.keys, victim)
			break
		}
	}
	t.keys[key] = live
	return len(live), !found && len(live) > 1
}
