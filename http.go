package licensing

import (
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/licensekit/licensing/internal/wire"
)

// APIPrefix is the path prefix of every route.
const APIPrefix = wire.APIPrefix

// HandlerConfig is the HTTP side of the API: what only the transport needs.
// Its zero value is the safe one: every limit at the reference server's
// default. NewHandler fills in the defaults documented on each field;
// turning a rate limiter off takes Unlimited, and a negative or
// nonsensical value makes NewHandler panic with the field's name.
type HandlerConfig struct {
	// RateLimit is the validations per minute allowed per client address
	// (validate and revocations). 0 means DefaultRateLimit (30, the
	// reference server's -rate-limit default); Unlimited turns the limiter
	// off, as the reference server's -rate-limit 0 does.
	RateLimit int
	// RateBurst is how many validations a client address may send at once.
	// Default: RateLimit.
	RateBurst int
	// OwnerRateLimit is the owner requests per minute allowed per user
	// (create, list, revoke, token), after authentication. 0 means
	// DefaultOwnerRateLimit (120, the reference server's
	// -owner-rate-limit default); Unlimited turns it off, and with it the
	// count of failed authentications.
	// The burst is a quarter of a minute's worth, at least 5. Failed
	// authentications (401) are counted the same way per client address:
	// each attempt takes a token before its credential is tried and a
	// success gives it back, so tokens cannot be guessed faster, even
	// concurrently, and one address has at most a burst's worth of
	// authentications in flight (a backend that forwards many owners'
	// requests belongs in TrustedProxies).
	OwnerRateLimit int
	// MaxTrackedClients bounds the rate limiters' memory: at most about
	// twice this many addresses are remembered. Default 100,000; it
	// cannot be turned off.
	MaxTrackedClients int
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed. Default none: the client address is the TCP peer. A
	// network holding every address (0.0.0.0/0, ::/0) is refused: any
	// client could choose the address it is counted as. When it is set, a
	// peer with no IP address (a proxy connected over a Unix socket, where
	// only local processes can connect) is trusted too; without it, every
	// request from such peers counts as one client.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds request bodies. Default 64 KiB; it cannot be
	// turned off.
	MaxBodyBytes int64
	// TrustedOrigins are origins ("https://admin.example.com") whose
	// browser requests may reach the owner routes with ambient credentials
	// (cookies). Owner requests without an Authorization header from any
	// other origin are refused (see http.CrossOriginProtection); requests
	// with one cannot be forged by another site and are not checked.
	TrustedOrigins []string
	// Logger receives the cause of every 5xx answer. Default: the
	// Service's Logger.
	Logger *slog.Logger
	// MaxLargeAnswers bounds how many large answers are written at once:
	// revocation lists over 64 KiB and unpaged key lists of more than
	// 500 keys. One more waits up to a second for its turn and is then
	// answered 503 with Retry-After, so that a flood of them cannot take
	// the CPU that validation needs. Default 2; it cannot be turned off.
	MaxLargeAnswers int
	// LargeAnswerBytesPerSecond paces the large answers: together they
	// are written no faster. Default 32 MiB (32 lists of 25,000 revoked
	// keys a second); it cannot be turned off.
	LargeAnswerBytesPerSecond int
}

// Handler serves the HTTP API documented in docs/API.md (and
// docs/openapi.yaml). Create it with NewHandler.
type Handler struct {
	svc     *Service
	auth    Authenticator
	cfg     HandlerConfig
	limiter *rateLimiter[netip.Addr] // nil when off
	owners  *rateLimiter[string]     // per user; nil when off
	guesses *rateLimiter[netip.Addr] // failed authentications per address; nil when the owner limit is off
	origins *http.CrossOriginProtection
	obs     Observer // nil when off
	mux     *http.ServeMux
	large   chan struct{} // a slot per large answer being written (largeanswers.go)
	pace    *pacer        // paces the large answers' bytes
}

// NewHandler returns the http.Handler for svc, with owner routes
// authenticated by auth and the transport configured by cfg (whose zero
// fields take their defaults). It serves the
// routes under APIPrefix, and the same routes with the prefix already
// stripped, so it can be mounted with http.ServeMux ("/api/v1/licensing/"),
// http.StripPrefix, or any router. The prefix is matched only at the start
// of the path. A nil svc or auth, or a HandlerConfig value that cannot work
// (a negative limit other than Unlimited, a trusted network holding every
// address, a malformed trusted origin), panics with the field's name: that
// is a programming error.
func NewHandler(svc *Service, auth Authenticator, cfg HandlerConfig) *Handler {
	if svc == nil || auth == nil {
		panic("licensing: NewHandler needs a Service and an Authenticator")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		panic(err.Error())
	}
	if cfg.Logger == nil {
		cfg.Logger = svc.cfg.Logger
	}
	h := &Handler{svc: svc, auth: auth, cfg: cfg, mux: http.NewServeMux(), origins: http.NewCrossOriginProtection(), obs: svc.cfg.Observer,
		large: make(chan struct{}, cfg.MaxLargeAnswers), pace: &pacer{rate: float64(cfg.LargeAnswerBytesPerSecond)}}
	for _, o := range cfg.TrustedOrigins {
		if err := h.origins.AddTrustedOrigin(o); err != nil {
			panic("licensing: HandlerConfig.TrustedOrigins: " + err.Error())
		}
	}
	if cfg.RateLimit > 0 {
		h.limiter = newRateLimiter[netip.Addr](float64(cfg.RateLimit)/60, cfg.RateBurst, cfg.MaxTrackedClients, svc.cfg.Now)
	}
	if cfg.OwnerRateLimit > 0 {
		h.owners = newRateLimiter[string](float64(cfg.OwnerRateLimit)/60, max(5, cfg.OwnerRateLimit/4), cfg.MaxTrackedClients, svc.cfg.Now)
		h.guesses = newRateLimiter[netip.Addr](float64(cfg.OwnerRateLimit)/60, max(5, cfg.OwnerRateLimit/4), cfg.MaxTrackedClients, svc.cfg.Now)
	}
	h.routes()
	return h
}

// routes registers every route with the standard library's method and
// wildcard patterns, with and without APIPrefix. A path known under other
// methods answers 405 with Allow; any other path 404.
func (h *Handler) routes() {
	routes := []struct {
		method, path string
		serve        http.HandlerFunc
	}{
		{http.MethodPost, wire.PathKeys, h.createKey},
		{http.MethodGet, wire.PathKeys, h.listKeys},
		{http.MethodDelete, wire.PathKey, h.revokeKey},
		{http.MethodPatch, wire.PathKey, h.patchKey},
		{http.MethodPost, wire.PathKeyRotate, h.rotateKey},
		{http.MethodPost, wire.PathKeyToken, h.issueToken},
		{http.MethodGet, wire.PathKeyInstances, h.listInstances},
		{http.MethodDelete, wire.PathKeyInstance, h.releaseInstance},
		{http.MethodGet, wire.PathPublicKeys, h.publicKeys},
		{http.MethodGet, wire.PathPublicKeysPEM, h.publicKeysPEM},
		{http.MethodGet, wire.PathRevocations, h.revocations},
		{http.MethodPost, wire.PathValidate, h.validate},
		{http.MethodGet, wire.PathEvents, h.listEvents},
	}
	allow := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		if allow[rt.path] == nil {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		if rt.method == http.MethodGet { // a GET pattern serves HEAD too
			allow[rt.path] = append(allow[rt.path], http.MethodHead)
		}
		serve := h.observed(rt.method+" "+rt.path, rt.serve)
		for _, prefix := range []string{"", APIPrefix} {
			h.mux.HandleFunc(rt.method+" "+prefix+rt.path, serve)
		}
	}
	for _, p := range paths {
		slices.Sort(allow[p])
		methods := strings.Join(allow[p], ", ")
		notAllowed := h.observed(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			h.fail(w, r, reply{}, &Error{Code: codeMethodNotAllowed, Message: "Method not allowed; use " + methods + "."})
		})
		for _, prefix := range []string{"", APIPrefix} {
			h.mux.HandleFunc(prefix+p, notAllowed)
		}
	}
	h.mux.HandleFunc("/", h.observed(routeUnmatched, func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, reply{}, &Error{Code: CodeNotFound, Message: "Not found."})
	}))
}

// ServeHTTP routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// actor authenticates an owner request, answering the failure itself. A
// browser request from another origin that relies on ambient credentials
// (no Authorization header) is refused before the authenticator runs.
func (h *Handler) actor(w http.ResponseWriter, r *http.Request) (Actor, bool) {
	// A repeated credential or organization is ambiguous: an authenticator
	// reading the first and a proxy checking the last would disagree.
	if len(r.Header.Values("Authorization")) > 1 {
		h.fail(w, r, reply{}, ErrUnauthorized)
		return Actor{}, false
	}
	if len(r.Header.Values(organizationHeader)) > 1 {
		h.fail(w, r, reply{}, &Error{Code: CodeInvalid, Message: organizationHeader + " must be sent at most once"})
		return Actor{}, false
	}
	if r.Header.Get("Authorization") == "" {
		if err := h.origins.Check(r); err != nil {
			h.fail(w, r, reply{}, errCrossOrigin)
			return Actor{}, false
		}
	}
	// Failed authentications are counted per address, at the owner rate:
	// an address out of tokens is refused before its credential is tried,
	// so nobody can guess tokens faster than the owner limit.
	// Each attempt takes a token before the credential is tried (so
	// concurrent guesses cannot all get through), and a success gives it
	// back.
	var addr netip.Addr
	if h.guesses != nil {
		addr = clientKey(h.clientAddr(r))
		if wait, ok := h.guesses.allow(addr); !ok {
			tooMany(w, wait)
			h.fail(w, r, reply{}, errRateLimited)
			return Actor{}, false
		}
	}
	a, err := h.auth.Authenticate(r)
	if h.guesses != nil && ErrorCode(err) != CodeUnauthorized {
		h.guesses.refund(addr) // not a failed guess
	}
	if err != nil {
		h.fail(w, r, reply{}, err)
		return Actor{}, false
	}
	if h.owners != nil {
		if wait, ok := h.owners.allow(a.UserID); !ok {
			tooMany(w, wait)
			h.fail(w, r, reply{}, errRateLimited)
			return Actor{}, false
		}
	}
	return a, true
}
