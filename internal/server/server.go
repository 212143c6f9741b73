// Package server is the reference licensing server: flags, configuration
// file, state directory, logging and signals around licensing.NewHandler. It
// imports only the standard library and this module's stdlib-only packages.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/ownerpage"
)

// Main is one run of the reference server. Fill it with ParseFlags, then call Run.
type Main struct {
	Addr           string
	ConfigPath     string
	DataDir        string
	StoreKind      string
	RateLimit      int
	RateBurst      int
	TrustedProxies string
	TokenLifetime  time.Duration
	CapTokens      bool          // end tokens at the organization's period end + TokenGrace
	TokenGrace     time.Duration // with CapTokens
	SigningKey     string        // Ed25519 PEM; default <data>/signing-ed25519.pem, made on first start
	RSASigningKey  string        // RSA PEM for RS256 tokens; default <data>/signing-rsa.pem, made (2048 bits) on first start
	OwnerRateLimit int           // owner requests per minute per actor; 0 off
	Issuer         string        // iss of offline tokens; "": the config file's, else DefaultIssuer
	// RotateSigningKeys accepts a missing (then generated) or changed signing
	// key file; the previous public keys stay published for SigningKeyOverlap.
	RotateSigningKeys bool
	SigningKeyOverlap time.Duration
	TLSCert           string // PEM certificate chain; with TLSKey, serve HTTPS (reloaded on SIGHUP)
	TLSKey            string
	ShutdownDelay     time.Duration // on SIGTERM, answer /readyz 503 this long before shutting down
	MaxConnsPerAddr   int           // open connections per client address (TCP peer; IPv6 by /64; trusted proxies exempt); 0 no cap
	LogFormat         string        // text or json
	LogLevel          string        // debug, info, warn or error
	RequestLog        string        // off, or the level of one line per request

	Stderr io.Writer // the log and the one-time owner token line
	Stdout io.Writer // the public-keys command's output
	Getenv func(string) string

	// Stores adds store kinds to -store beside "file" and "memory": a
	// binary with more dependencies (the PostgreSQL one) registers its own
	// here. The closer, when not nil, is closed at shutdown.
	Stores map[string]func(ctx context.Context) (licensing.Store, io.Closer, error)
	// Flags, when set, defines extra flags (for those stores) before parsing.
	Flags func(fs *flag.FlagSet)

	logger       *slog.Logger
	logLevel     slog.Level
	requestLogOn bool
	requestLevel slog.Level
	reqBuf       *bufferedWriter // the request log's; nil when it is off
	events       *eventLog
	envErrs      map[string]error // environment variable -> why its value is invalid
	lock         *os.File         // the flock on <data>/.lock, held while running
	storeHadData bool             // the store held keys of a configured organization when this start opened it
	dir          Directory
	svc          *licensing.Service
	store        licensing.Store
	closer       io.Closer

	metrics      *metrics
	stopWebhooks func()          // ends the webhook deliveries; nil when none run
	webhooksCfg  FileConfig      // the start's webhooks and webhookDelivery: a reload keeps them
	cert         *certificate    // nil: plain HTTP
	stopping     atomic.Bool     // set before Shutdown: /readyz answers 503
	drainCut     <-chan struct{} // closed by a second signal: the drain ends now
}

// ParseFlags reads flags from args; each flag's default comes from its
// environment variable when that is set. An invalid value, on the command
// line or in the environment, is an error of one line naming the flag or
// the variable and what it allows (see flags.go).
func (m *Main) ParseFlags(args []string) error {
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	if m.Stderr == nil {
		m.Stderr = os.Stderr
	}
	m.envErrs = map[string]error{}
	env, envInt, envDur, envBool := m.envString, m.envInt, m.envDur, m.envBool
	fs := flag.NewFlagSet("licensing-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by Main; -h prints the usage
	fs.StringVar(&m.Addr, "addr", env("LICENSING_ADDR", "127.0.0.1:8080"), "listen address (LICENSING_ADDR)")
	fs.StringVar(&m.ConfigPath, "config", env("LICENSING_CONFIG", ""), "JSON configuration file; none: demo organization (LICENSING_CONFIG)")
	fs.StringVar(&m.DataDir, "data", env("LICENSING_DATA", "./licensing-data"), "state directory (LICENSING_DATA)")
	kinds := "file (durable, in <data>/store) or memory"
	for _, k := range slices.Sorted(maps.Keys(m.Stores)) {
		kinds = k + ", " + kinds
	}
	fs.StringVar(&m.StoreKind, "store", env("LICENSING_STORE", "file"), "key store: "+kinds+" (LICENSING_STORE)")
	fs.IntVar(&m.RateLimit, "rate-limit", envInt("LICENSING_RATE_LIMIT", licensing.DefaultRateLimit), "validations per minute per client address; 0 turns the limiter off (LICENSING_RATE_LIMIT)")
	fs.IntVar(&m.RateBurst, "rate-burst", envInt("LICENSING_RATE_BURST", 30), "validations a client address may send at once (LICENSING_RATE_BURST)")
	fs.IntVar(&m.OwnerRateLimit, "owner-rate-limit", envInt("LICENSING_OWNER_RATE_LIMIT", licensing.DefaultOwnerRateLimit), "owner requests per minute per actor; 0 turns the limiter off (LICENSING_OWNER_RATE_LIMIT)")
	fs.DurationVar(&m.TokenLifetime, "token-lifetime", envDur("LICENSING_TOKEN_LIFETIME", 365*24*time.Hour), "lifetime of offline tokens (LICENSING_TOKEN_LIFETIME)")
	fs.BoolVar(&m.CapTokens, "cap-tokens", envBool("LICENSING_CAP_TOKENS", false), "end offline tokens no later than the organization's currentPeriodEnd plus -token-grace (LICENSING_CAP_TOKENS=true)")
	fs.DurationVar(&m.TokenGrace, "token-grace", envDur("LICENSING_TOKEN_GRACE", 0), "grace after currentPeriodEnd for -cap-tokens (LICENSING_TOKEN_GRACE)")
	fs.StringVar(&m.Issuer, "issuer", env("LICENSING_ISSUER", ""), "iss claim of offline tokens; default: the config file's issuer, else "+DefaultIssuer+" (LICENSING_ISSUER)")
	fs.StringVar(&m.SigningKey, "signing-key", env("LICENSING_SIGNING_KEY", ""), "Ed25519 private key (PEM) for tokens and signed answers; default <data>/signing-ed25519.pem, generated on first start (LICENSING_SIGNING_KEY)")
	fs.StringVar(&m.RSASigningKey, "rsa-signing-key", env("LICENSING_RSA_SIGNING_KEY", ""), "RSA private key (PEM) for RS256 tokens, the default; default <data>/signing-rsa.pem, generated (2048 bits) on first start (LICENSING_RSA_SIGNING_KEY)")
	fs.BoolVar(&m.RotateSigningKeys, "rotate-signing-keys", false, "accept new signing keys: generate a missing key file, or take a changed one; the previous public keys stay published for -signing-key-overlap")
	fs.DurationVar(&m.SigningKeyOverlap, "signing-key-overlap", envDur("LICENSING_SIGNING_KEY_OVERLAP", 30*24*time.Hour), "how long a rotated-out public key stays in the JWKS and the PEM (LICENSING_SIGNING_KEY_OVERLAP)")
	fs.StringVar(&m.TrustedProxies, "trusted-proxies", env("LICENSING_TRUSTED_PROXIES", ""), "comma-separated networks whose X-Forwarded-For is believed (LICENSING_TRUSTED_PROXIES)")
	m.opsFlags(fs)
	fs.StringVar(&m.LogFormat, "log-format", env("LICENSING_LOG_FORMAT", "text"), "log format: text or json (LICENSING_LOG_FORMAT)")
	fs.StringVar(&m.LogLevel, "log-level", env("LICENSING_LOG_LEVEL", "info"), "least level logged: debug (adds an event per validation), info, warn or error (LICENSING_LOG_LEVEL)")
	fs.StringVar(&m.RequestLog, "request-log", env("LICENSING_REQUEST_LOG", "off"), "one line per request (method, redacted path, status, duration) at this level: debug, info, warn or error; off by default (LICENSING_REQUEST_LOG)")
	if m.Flags != nil {
		m.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(m.Stderr, usage)
			fs.SetOutput(m.Stderr)
			fs.PrintDefaults()
			return err
		}
		return flagError(err)
	}
	if err := m.checkFlags(fs, args); err != nil {
		return err
	}
	return m.checkLogFlags()
}

// Main is what a command's main does: parse args, run until SIGINT or
// SIGTERM (SIGHUP reloads the configuration and the TLS certificate), and
// return the exit code: 0, 1 when the server fails, 2 for an invalid flag or
// environment value. As the first argument, "public-keys" prints the public
// signing keys, "scan" runs the leak scanner, "owner-token" replaces the
// demo owner's token (ownertoken.go), and "backup" and "restore" run those
// commands instead (see docs/server.md).
func (m *Main) Main(args []string) int {
	if code, ok := m.subcommand(args); ok { // backup, restore
		return code
	}
	if len(args) > 0 && args[0] == "scan" {
		return m.scanMain(args[1:]) // the leak scanner (scan.go), not the server
	}
	if len(args) > 0 && args[0] == "public-keys" {
		return m.publicKeysCommand(args[1:])
	}
	if err := m.ParseFlags(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(m.Stderr, "licensing-server:", err)
		return 2
	}
	// The first SIGINT or SIGTERM shuts down gracefully; another one during
	// the -shutdown-delay drain ends the drain at once (still gracefully).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	again, done := make(chan struct{}), make(chan struct{})
	defer close(done)
	m.drainCut = again
	go func() {
		for first := true; ; first = false {
			select {
			case <-sigs:
			case <-done:
				return
			}
			if !first {
				close(again)
				return
			}
			stop()
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := m.Run(ctx, hup); err != nil {
		fmt.Fprintln(m.Stderr, "licensing-server:", err)
		return 1
	}
	return 0
}

// Run starts the server and serves until ctx ends, then shuts down
// gracefully. reload delivers SIGHUP: each value reloads the configuration.
func (m *Main) Run(ctx context.Context, reload <-chan os.Signal) error {
	if m.Stderr == nil {
		m.Stderr = os.Stderr
	}
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	if err := m.checkLogFlags(); err != nil {
		return err
	}
	m.startLogging()
	defer m.stopLogging()
	stopProfile, err := m.startProfile()
	if err != nil {
		return err
	}
	defer stopProfile()
	// The TLS pair is checked first: a pair that cannot be served stops the
	// start before the data directory is touched.
	if m.cert, err = newCertificate(m.TLSCert, m.TLSKey); err != nil {
		return err
	}
	st, err := m.start(ctx)
	defer m.unlock()
	if err != nil {
		return err
	}
	serving := false
	defer func() {
		if !serving && m.closer != nil {
			m.closer.Close()
		}
	}()
	proxies, err := parsePrefixes(m.TrustedProxies)
	if err != nil {
		return err
	}
	timed, err := m.instrument(ctx)
	if err != nil {
		return err
	}
	m.svc, err = licensing.New(licensing.Config{
		Policy:               m.policy(st.cfg),
		Store:                withEventLog(m.recordIssued(timed, st.issued), m.store),
		Observer:             m.metrics,
		Organizations:        &m.dir,
		Pepper:               st.pepper,
		Signing:              st.signing,
		TokenLifetime:        m.TokenLifetime,
		CapTokensAtPeriodEnd: m.CapTokens,
		TokenPeriodGrace:     m.TokenGrace,
		Logger:               m.logger,
		OnEvent:              m.logEvent,
	})
	if err != nil {
		return err
	}
	m.metrics.droppedEvents = m.svc.DroppedEvents
	if err := m.startWebhooks(st.cfg); err != nil {
		m.svc.Close(context.Background())
		return err
	}
	m.webhooksCfg = FileConfig{Webhooks: st.cfg.Webhooks, WebhookDelivery: st.cfg.WebhookDelivery}
	defer m.serveAdmin()()
	mux := http.NewServeMux()
	api := licensing.NewHandler(m.svc, &m.dir, licensing.HandlerConfig{
		RateLimit:      offIfZero(m.RateLimit),
		RateBurst:      m.RateBurst,
		OwnerRateLimit: offIfZero(m.OwnerRateLimit),
		TrustedProxies: proxies,
		Logger:         m.logger,
	})
	mux.Handle(licensing.APIPrefix+"/", api)
	m.opsRoutes(mux)
	mux.Handle("/", m.pageRoutes(ownerpage.Handler(ownerpage.Config{APIBase: licensing.APIPrefix}))) // the owner page; 404 elsewhere
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		return err
	}
	ln = limitConns(ln, m.MaxConnsPerAddr, proxies, &m.metrics.connsRefused, func(addr netip.Addr, max int) {
		m.logger.Warn("closed a connection over -max-conns-per-addr (logged at most once a minute; licensing_connections_refused_total counts them all)",
			"addr", addr.String(), "max", max)
	})
	srv := &http.Server{
		Handler:           m.logRequests(apiFirst(api, mux)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	if m.cert != nil {
		srv.TLSConfig = m.cert.config()
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	if err := st.announce(); err != nil {
		ln.Close()
		return err
	}
	m.logger.Info("listening", "addr", ln.Addr().String(), "store", m.StoreKind, "data", m.DataDir)
	serving = true
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	for {
		select {
		case <-reload:
			m.reload()
			m.reloadTLS()
			continue
		case err := <-served:
			m.shutdown()
			return err
		case <-ctx.Done():
		}
		break
	}
	m.logger.Info("shutting down")
	m.stopping.Store(true)
	m.drain()
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if cerr := m.shutdown(); err == nil {
		err = cerr
	}
	return err
}

func (m *Main) shutdown() error {
	if m.stopWebhooks != nil {
		m.stopWebhooks() // before the store closes: a delivery cut short is made again at the next start
	}
	err := m.svc.Close(context.Background())
	if m.closer != nil {
		if cerr := m.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (m *Main) reload() {
	if m.ConfigPath == "" {
		m.logger.Info("reload: no -config file; nothing to reload")
		return
	}
	// The file may have been opened to other users since the start: the
	// start's rule holds for every read (datadir.go).
	err := checkOutside(m.ConfigPath, false)
	var cfg *FileConfig
	if err == nil {
		cfg, err = LoadConfig(m.ConfigPath)
	}
	if err == nil {
		err = m.dir.Swap(cfg)
	}
	if err != nil {
		m.logger.Error("reload failed; keeping the previous configuration", "err", err)
		return
	}
	if err := m.svc.SetPolicy(m.policy(cfg)); err != nil {
		m.logger.Error("reload failed; keeping the previous policy", "err", err)
		return
	}
	// The organizations may have changed: licensing_keys counts the
	// configured ones' keys.
	if err := m.recountKeys(context.Background()); err != nil {
		m.logger.Error("reload: count keys for licensing_keys", "err", err)
	}
	if !reflect.DeepEqual(cfg.Webhooks, m.webhooksCfg.Webhooks) || cfg.WebhookDelivery != m.webhooksCfg.WebhookDelivery {
		m.logger.Warn("reload: webhooks and webhookDelivery changed in the configuration; they take effect at the next start")
	}
	if err := cfg.checkOwners(); err != nil {
		m.logger.Warn("reloaded configuration holds an owner without a token or a token without an organization; a start would refuse it", "err", err)
	}
	m.logger.Info("configuration reloaded", "organizations", len(cfg.Organizations))
}

func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("-trusted-proxies: %q is not a network", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:10.0.0.0/104 is 10.0.0.0/8: peers are compared unmapped
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("-trusted-proxies: %s holds every address: any client could choose the address it is rate limited as; list only your proxies' networks", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// offIfZero maps a -rate-limit of 0 ("off" on the command line) to
// licensing.Unlimited: a zero HandlerConfig limit is the default, not off.
func offIfZero(perMinute int) int {
	if perMinute == 0 {
		return licensing.Unlimited
	}
	return perMinute
}

// logEvent logs an event: a validation, passed or failed, or a key's first
// (key.activated), at debug level through the event queue (nothing at all
// unless debug is on), any other event at info, at once.
func (m *Main) logEvent(ctx context.Context, e licensing.Event) {
	if e.Type == licensing.EventKeyValidated || e.Type == licensing.EventValidationFailed || e.Type == licensing.EventKeyActivated {
		if m.logger.Enabled(ctx, slog.LevelDebug) {
			m.events.add(e)
		}
		return
	}
	writeEvent(m.logger, slog.LevelInfo, e)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// logRequests logs one line per request, at the -request-log level, when
// the request log is on: method (a standard one, else "other"), path (with
// any long hex run redacted, so a key pasted into a URL never reaches the
// log), status and duration. Query strings, headers and bodies are never
// logged. When it is off, next is returned as it is.
func (m *Main) logRequests(next http.Handler) http.Handler {
	if m.reqBuf == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		m.writeRequestLine(start, logMethod(r.Method), redactPath(r.URL.Path), sw.status, time.Since(start).Round(time.Microsecond))
	})
}

// logMethod is the method as the request log shows it: a standard one as
// it is, any other as "other". A client may send any token as its method,
// a key included, of any length the header limit allows.
func logMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// pageRoutes observes the owner page's answers in /metrics under its own
// paths ("/", "/owner.js", "/owner.css"), and everything else it answers
// (404 for any other path) as "unmatched", the route licensing.Observer
// gets for a path of no route: a fixed set of
// labels whatever paths are asked for.
func (m *Main) pageRoutes(page http.Handler) http.Handler {
	routes := map[string]http.HandlerFunc{}
	for _, p := range []string{"/", "/owner.js", "/owner.css"} {
		routes[p] = m.metrics.observe(p, page.ServeHTTP)
	}
	other := m.metrics.observe("unmatched", page.ServeHTTP)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := routes[r.URL.Path]; ok {
			h(w, r)
			return
		}
		other(w, r)
	})
}

// apiFirst hands requests under licensing.APIPrefix (and the prefix itself,
// which api answers with its JSON 404 rather than mux with a redirect)
// straight to api, which routes them itself (and cleans their paths as a
// ServeMux does), so the hot path pays for one routing step, not two;
// everything else goes to mux.
func apiFirst(api, mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.URL.Path == licensing.APIPrefix || strings.HasPrefix(r.URL.Path, licensing.APIPrefix+"/")) && r.Method != http.MethodConnect {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// redactPath replaces every run of 32 or more hex digits, then cuts a path
// longer than 256 bytes, so no secret ends up in a log line. The order
// matters: a cut made first would leave the start of a key that straddles
// the 256th byte as a run too short to be recognized.
func redactPath(p string) string {
	if len(p) <= 256 && longestHexRun(p) < 32 {
		return p // nothing to redact: no copy
	}
	var b strings.Builder
	run := 0
	flush := func(end int) {
		if run >= 32 {
			b.WriteString("[redacted]")
		} else {
			b.WriteString(p[end-run : end])
		}
		run = 0
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F') {
			run++
			continue
		}
		flush(i)
		b.WriteByte(c)
	}
	flush(len(p))
	out := b.String()
	if len(out) > 256 {
		out = out[:256] + "..."
	}
	return out
}

func longestHexRun(p string) int {
	longest, run := 0, 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F') {
			run++
			longest = max(longest, run)
			continue
		}
		run = 0
	}
	return longest
}
