package licensing

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"maps"
	"sync"
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
	// them. Nil means the seed system's map: companyCount → maxCompanies,
	// userCount → maxUsersPerOrg, invoicesThisMonth → maxInvoicesPerMonth
	// and orgCount → maxOrganizations (a plan without maxOrganizations
	// allows one organization). An empty map means no limits.
	Limits map[string]string
	// NotEligibleMessage is the error text when an organization whose plan
	// lacks RequiredFeature asks for a key or a token; it should name the
	// vendor's upgrade path. Default: "Your plan does not include
	// self-hosted licenses; upgrade your plan in the billing settings to
	// create license keys."
	NotEligibleMessage string
	// ValidateNotEligibleMessage is the error text a self-hosted instance
	// gets when its organization's plan lacks RequiredFeature. Default:
	// "This organization's plan does not include self-hosted licenses; ask
	// the organization owner to upgrade the plan in the billing settings."
	ValidateNotEligibleMessage string
	// Issuer is the iss claim of offline tokens, which clients check.
	// Required: New and SetPolicy refuse an empty one.
	Issuer string
}

// Default texts of a plan that does not allow self-hosting (see Policy).
const (
	defaultNotEligibleMessage         = "Your plan does not include self-hosted licenses; upgrade your plan in the billing settings to create license keys."
	defaultValidateNotEligibleMessage = "This organization's plan does not include self-hosted licenses; ask the organization owner to upgrade the plan in the billing settings."
)

// Config configures a Service. New fills in the defaults documented on each
// field; the zero value of an optional field means its default.
type Config struct {
	Policy

	Store         Store         // required
	Organizations Organizations // required
	// Hasher turns keys into stored digests. Default: an hmacHasher keyed
	// with Pepper.
	Hasher Hasher
	// Pepper is the server secret of the default Hasher, at least
	// MinPepperLength bytes, the same at every start (LoadOrCreatePepper
	// keeps one in a file). Required unless Hasher is set.
	Pepper []byte

	// Signing signs offline tokens, validation answers to requests with a
	// nonce, and revocation lists. Default: a fresh Ed25519 key made by New,
	// which lives only as long as the process; production services load
	// persistent keys (LoadOrCreateSigningKeys, NewSigningKeys).
	Signing *SigningKeys
	// TokenLifetime is how long an offline token is valid. Default one year.
	TokenLifetime time.Duration
	// CapTokensAtPeriodEnd, when set, ends offline tokens no later than the
	// organization's CurrentPeriodEnd plus TokenPeriodGrace.
	CapTokensAtPeriodEnd bool
	TokenPeriodGrace     time.Duration

	// OnEvent, when set, is called for every Event. Owner actions (created,
	// revoked, token issued) call it synchronously before the call returns;
	// the validate route's events (validated, validation failed, shared)
	// reach it in order from a goroutine of the Service, off the request
	// path (Flush waits for them; a backlog over 4,096 is dropped). It must
	// not call back into the Service.
	OnEvent func(context.Context, Event)
	// Logger receives background errors (failed batch writes). Default slog.Default().
	Logger *slog.Logger
	// Observer, when set, receives validation outcomes, and, from a
	// Handler built on this Service, requests (see Observer).
	Observer Observer

	// FlushInterval is how often batched validation records are written.
	// Default 1s. A batch is written sooner once 4,096 records (one per
	// key and instance) are pending.
	FlushInterval time.Duration
	// InstanceLease is how long an instance holds its seat on a key after
	// its last validation (see Store.SeatInstance): an instance that
	// validates within it keeps its seat, one that stops validating frees
	// it when the lease runs out. The instances that hold a seat are the
	// ones a key is shared by. Default 72h, so that an instance that checks
	// daily never loses its seat and a replaced container frees its own.
	InstanceLease time.Duration

	// EventRetention is how long the event log keeps an event, when Store
	// implements EventLog: a background pruner deletes older events at
	// start and every 10 minutes. Default 90 days.
	EventRetention time.Duration
	// EventRetentionCount is how many events the event log keeps at most
	// (the newest), applied by the same pruner; the memory and file
	// stores hold the log in memory, about 300 bytes an event (300 MB at
	// a million). Default 1,000,000.
	EventRetentionCount int
	// ExpiryReminder is how long before a key's expiry the Service appends
	// EventKeyExpiring to the event log (once per key and expiry, from
	// any one of the servers sharing the store; see reminders.go). Default
	// 14 days; a negative value sends no reminders.
	ExpiryReminder time.Duration

	// Now and Random exist for tests. Defaults time.Now and crypto/rand.Reader.
	// Now is called from the Service's goroutines too (with an EventLog, the
	// pruner and the expiry reminders, every minute): it must be safe for
	// concurrent use.
	Now    func() time.Time
	Random io.Reader
}

// Service implements the key lifecycle. Create it with New; it is safe for
// concurrent use. Close it to flush batched validation records.
type Service struct {
	cfg       Config
	policy    atomic.Pointer[Policy]
	rec       *recorder
	events    *eventQueue // the validate route's events; nil without OnEvent
	expired   *toldKeys   // keys whose EventKeyExpired was sent
	activated *toldKeys   // keys whose EventKeyActivated was sent (until the store has their ActivatedAt)
	dummy     string      // a digest no key has, verified against on a miss
	// cursorKey authenticates list cursors (cursor.go).
	cursorKey []byte
	// revocations holds the encoded revocation lists (revocationcache.go).
	revocations *revocationCache

	// The event log (eventwriter.go, reminders.go): nil elog when the
	// Store does not implement EventLog, and then no writer nor limiter.
	elog     EventLog
	ewriter  *eventWriter
	limiter  *eventLimiter
	reminded *toldKeys // ids of the reminders this process sent
	// remindMu serializes the reminder scans; scannedUntil is the end of
	// the window the last complete scan covered (zero: none yet).
	remindMu     sync.Mutex
	scannedUntil time.Time
	stopBg       chan struct{}
	bgDone       chan struct{}
	closeBg      sync.Once
}

// New returns a Service for cfg with defaults filled in. A missing Store or
// Organizations, or a missing or short Pepper without a Hasher, is an error.
// With a Pepper, a Store that can tell confirms it is the pepper its keys
// were issued under, and another one is an error wrapping
// ErrPepperMismatch: a Store with the method
//
//	CheckPepper(ctx context.Context, fingerprint string) error
//
// (the file and PostgreSQL stores have it) is given PepperFingerprint of
// Config.Pepper. It records the fingerprint when it has none yet, and
// returns an error wrapping ErrPepperMismatch when it records another.
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
	fingerprint := "" // of the pepper, when New knows it
	if cfg.Hasher == nil {
		h, err := newHMACHasher(cfg.Pepper)
		if err != nil {
			return nil, err
		}
		cfg.Hasher, fingerprint = h, PepperFingerprint(cfg.Pepper)
	} else if h, ok := cfg.Hasher.(*hmacHasher); ok {
		fingerprint = h.fingerprint() // the default Hasher built by the caller
	}
	cursorSecret := cfg.Pepper
	cfg.Pepper = nil // the hasher holds its own copy
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if cfg.InstanceLease <= 0 {
		cfg.InstanceLease = DefaultInstanceLease
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EventRetention <= 0 {
		cfg.EventRetention = defaultEventRetention
	}
	if cfg.EventRetentionCount <= 0 {
		cfg.EventRetentionCount = defaultEventRetentionCount
	}
	if cfg.ExpiryReminder == 0 {
		cfg.ExpiryReminder = defaultExpiryReminder
	}
	if cfg.Signing == nil {
		k, err := GenerateSigningKeys(0)
		if err != nil {
			return nil, &Error{Code: CodeInternal, Message: "Could not generate a signing key.", Err: err}
		}
		cfg.Signing = k
		cfg.Logger.Warn("licensing: no Config.Signing: made signing keys that last only as long as this process; " +
			"offline tokens and signed answers will not verify after a restart (load persistent keys)")
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = 365 * 24 * time.Hour
	}
	if cfg.Random == nil {
		cfg.Random = rand.Reader
	}
	if cursorSecret == nil {
		cursorSecret = cfg.Signing.ed.Seed()
	}
	s := &Service{cfg: cfg, expired: newToldKeys(100_000), activated: newToldKeys(100_000),
		cursorKey: newCursorKey(cursorSecret), revocations: newRevocationCache()}
	if err := s.SetPolicy(cfg.Policy); err != nil {
		return nil, err
	}
	dummy, err := cfg.Hasher.Digest(dummyKey)
	if err != nil {
		return nil, err
	}
	s.dummy = dummy
	if fingerprint != "" {
		if err := checkStorePepper(cfg.Store, fingerprint); err != nil {
			return nil, err
		}
	}
	s.rec = newRecorder(cfg.Store, cfg.FlushInterval, cfg.Logger)
	if cfg.OnEvent != nil {
		s.events = newEventQueue(cfg.OnEvent)
	}
	if l, ok := cfg.Store.(EventLog); ok {
		s.elog, s.ewriter = l, newEventWriter(l, cfg.Logger)
		s.limiter, s.reminded = newEventLimiter(eventLimitEvery, eventLimiterSize), newToldKeys(100_000)
		s.stopBg, s.bgDone = make(chan struct{}), make(chan struct{})
		// Once now, before any caller can change what Now returns, then in
		// the background; failures are logged, and tried again there.
		s.pruneEvents(context.Background())
		s.remindExpiring(context.Background())
		go func() {
			defer close(s.bgDone)
			s.maintainEvents(s.stopBg)
		}()
	}
	return s, nil
}

// SetPolicy replaces the service's Policy; calls that start afterwards use
// it. A Policy without an Issuer is refused and the current one kept.
func (s *Service) SetPolicy(p Policy) error {
	if p.Issuer == "" {
		return configError("Policy.Issuer is empty")
	}
	if p.Limits == nil {
		p.Limits = defaultLimits
	}
	if p.NotEligibleMessage == "" {
		p.NotEligibleMessage = defaultNotEligibleMessage
	}
	if p.ValidateNotEligibleMessage == "" {
		p.ValidateNotEligibleMessage = defaultValidateNotEligibleMessage
	}
	p.Limits = maps.Clone(p.Limits)
	s.policy.Store(&p)
	return nil
}

// Flush writes the pending validation records to the store now, and waits
// until OnEvent has seen every event of the validate route so far, and the
// event log has them.
func (s *Service) Flush(ctx context.Context) error {
	if s.events != nil {
		if err := s.events.flush(ctx); err != nil {
			return err
		}
	}
	if s.ewriter != nil {
		if err := s.ewriter.flush(ctx); err != nil {
			return err
		}
	}
	return s.rec.flush(ctx)
}

// Close stops the background writers (validation records, events) and the
// event log's pruner and reminders, and flushes what is pending. The
// Service must not be used afterwards.
func (s *Service) Close(ctx context.Context) error {
	if s.stopBg != nil {
		s.closeBg.Do(func() { close(s.stopBg) })
		<-s.bgDone
	}
	err := s.rec.close(ctx)
	if s.events != nil {
		s.events.close()
	}
	if s.ewriter != nil {
		s.ewriter.close()
	}
	return err
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// emitLater queues e for OnEvent and the event log (eventwriter.go) off
// the request path.
func (s *Service) emitLater(ctx context.Context, e Event) {
	if s.cfg.Observer != nil {
		s.observeEvent(&e) // counted now: an atomic add, the same for every outcome
	}
	s.logLater(&e)
	if s.events != nil {
		if e.Time.IsZero() {
			e.Time = s.now()
		}
		s.events.add(ctx, e)
	}
}

// emit tells an owner action's event to the event log and OnEvent before
// the action's call returns.
func (s *Service) emit(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if e.ID == "" {
		e.ID = newEventID()
	}
	s.logNow(ctx, e)
	s.tell(ctx, e)
}

// tell gives e to the Observer and OnEvent.
func (s *Service) tell(ctx context.Context, e Event) {
	if s.cfg.Observer != nil {
		s.observeEvent(&e)
	}
	if s.cfg.OnEvent != nil {
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
		if err := s.eligible(org, s.policy.Load().NotEligibleMessage); err != nil {
			return Organization{}, err
		}
	}
	return org, nil
}

// eligible checks what any new credential or successful validation needs;
// notEligible is the Policy's text for the route asking.
func (s *Service) eligible(org Organization, notEligible string) error {
	if !org.Active {
		return ErrOrgInactive
	}
	if f := s.policy.Load().RequiredFeature; f != "" && !featureEnabled(org.Features[f]) {
		return &Error{Code: CodePlanNotEligible, Message: notEligible}
	}
	return nil
}
