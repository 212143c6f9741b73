// Package server is the reference licensing server: flags, configuration
// file, state directory, logging and signals around licensing.NewHandler. It
// imports only the standard library and this module's stdlib-only packages.
package server

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
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
	RSASigningKey  string        // RSA PEM for RS256 tokens; made (3072 bits) if the file does not exist
	LogFormat      string        // text or json
	LogLevel       string        // debug, info, warn or error
	RequestLog     string        // off, or the level of one line per request

	Stderr io.Writer // the log and the one-time owner token line
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
	dir          Directory
	svc          *licensing.Service
	store        licensing.Store
	closer       io.Closer
}

// ParseFlags reads flags from args; each flag's default comes from its
// environment variable when that is set.
func (m *Main) ParseFlags(args []string) error {
	if m.Getenv == nil {
		m.Getenv = os.Getenv
	}
	if m.Stderr == nil {
		m.Stderr = os.Stderr
	}
	env := func(name, def string) string {
		if v := m.Getenv(name); v != "" {
			return v
		}
		return def
	}
	envInt := func(name string, def int) int {
		if v := m.Getenv(name); v != "" {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
		return def
	}
	fs := flag.NewFlagSet("licensing-server", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.Addr, "addr", env("LICENSING_ADDR", "127.0.0.1:8080"), "listen address (LICENSING_ADDR)")
	fs.StringVar(&m.ConfigPath, "config", env("LICENSING_CONFIG", ""), "JSON configuration file; none: demo organization (LICENSING_CONFIG)")
	fs.StringVar(&m.DataDir, "data", env("LICENSING_DATA", "./licensing-data"), "state directory (LICENSING_DATA)")
	fs.StringVar(&m.StoreKind, "store", env("LICENSING_STORE", "file"), "key store: file (durable, in <data>/store) or memory (LICENSING_STORE)")
	fs.IntVar(&m.RateLimit, "rate-limit", envInt("LICENSING_RATE_LIMIT", 30), "validations per minute per client address; 0 turns the limiter off (LICENSING_RATE_LIMIT)")
	fs.IntVar(&m.RateBurst, "rate-burst", envInt("LICENSING_RATE_BURST", 30), "validations a client address may send at once (LICENSING_RATE_BURST)")
	envDur := func(name string, def time.Duration) time.Duration {
		if d, err := time.ParseDuration(m.Getenv(name)); err == nil {
			return d
		}
		return def
	}
	fs.DurationVar(&m.TokenLifetime, "token-lifetime", envDur("LICENSING_TOKEN_LIFETIME", 365*24*time.Hour), "lifetime of offline tokens (LICENSING_TOKEN_LIFETIME)")
	fs.BoolVar(&m.CapTokens, "cap-tokens", m.Getenv("LICENSING_CAP_TOKENS") == "true", "end offline tokens no later than the organization's currentPeriodEnd plus -token-grace (LICENSING_CAP_TOKENS=true)")
	fs.DurationVar(&m.TokenGrace, "token-grace", envDur("LICENSING_TOKEN_GRACE", 0), "grace after currentPeriodEnd for -cap-tokens (LICENSING_TOKEN_GRACE)")
	fs.StringVar(&m.SigningKey, "signing-key", env("LICENSING_SIGNING_KEY", ""), "Ed25519 private key (PEM) for tokens and signed answers; default <data>/signing-ed25519.pem, generated once (LICENSING_SIGNING_KEY)")
	fs.StringVar(&m.RSASigningKey, "rsa-signing-key", env("LICENSING_RSA_SIGNING_KEY", ""), "RSA private key (PEM) for RS256 tokens; generated there if missing; none: EdDSA only (LICENSING_RSA_SIGNING_KEY)")
	fs.StringVar(&m.TrustedProxies, "trusted-proxies", env("LICENSING_TRUSTED_PROXIES", ""), "comma-separated networks whose X-Forwarded-For is believed (LICENSING_TRUSTED_PROXIES)")
	fs.StringVar(&m.LogFormat, "log-format", env("LICENSING_LOG_FORMAT", "text"), "log format: text or json (LICENSING_LOG_FORMAT)")
	fs.StringVar(&m.LogLevel, "log-level", env("LICENSING_LOG_LEVEL", "info"), "least level logged: debug (adds an event per validation), info, warn or error (LICENSING_LOG_LEVEL)")
	fs.StringVar(&m.RequestLog, "request-log", env("LICENSING_REQUEST_LOG", "off"), "one line per request (method, redacted path, status, duration) at this level: debug, info, warn or error; off by default (LICENSING_REQUEST_LOG)")
	if m.Flags != nil {
		m.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if m.RateLimit < 0 || m.RateBurst < 1 {
		return errors.New("-rate-limit must be >= 0 and -rate-burst >= 1")
	}
	if m.TokenLifetime <= 0 || m.TokenGrace < 0 {
		return errors.New("-token-lifetime must be positive and -token-grace not negative")
	}
	return m.checkLogFlags()
}

// Main is what a command's main does: parse args, run until SIGINT or
// SIGTERM (SIGHUP reloads the configuration), and return the exit code.
func (m *Main) Main(args []string) int {
	if err := m.ParseFlags(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	pepper, err := m.pepper()
	if err != nil {
		return err
	}
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	if err := m.dir.Swap(cfg); err != nil {
		return err
	}
	signing, err := m.signingKeys()
	if err != nil {
		return err
	}
	proxies, err := parsePrefixes(m.TrustedProxies)
	if err != nil {
		return err
	}
	health := func() error { return nil }
	switch m.StoreKind {
	case "memory":
		m.store = licensing.NewMemoryStore()
	case "file":
		fst, err := filestore.Open(filepath.Join(m.DataDir, "store"), filestore.Options{Logger: m.logger})
		if err != nil {
			return err
		}
		m.store, m.closer, health = fst, fst, fst.Err
	default:
		open, ok := m.Stores[m.StoreKind]
		if !ok {
			return fmt.Errorf("-store %q: want file or memory", m.StoreKind)
		}
		if m.store, m.closer, err = open(ctx); err != nil {
			return err
		}
	}
	m.svc, err = licensing.New(licensing.Config{
		Policy:               cfg.policy(),
		Store:                m.store,
		Organizations:        &m.dir,
		Pepper:               pepper,
		Signing:              signing,
		TokenLifetime:        m.TokenLifetime,
		CapTokensAtPeriodEnd: m.CapTokens,
		TokenPeriodGrace:     m.TokenGrace,
		Logger:               m.logger,
		OnEvent:              m.logEvent,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	api := licensing.NewHandler(m.svc, &m.dir, licensing.HandlerConfig{
		RateLimit:      m.RateLimit,
		RateBurst:      m.RateBurst,
		TrustedProxies: proxies,
		Logger:         m.logger,
	})
	mux.Handle(licensing.APIPrefix+"/", api)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if health() != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"status":"store failed; refusing writes"}`+"\n")
			return
		}
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           m.logRequests(apiFirst(api, mux)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	m.logger.Info("listening", "addr", ln.Addr().String(), "store", m.StoreKind, "data", m.DataDir)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	for {
		select {
		case <-reload:
			m.reload()
			continue
		case err := <-served:
			m.shutdown()
			return err
		case <-ctx.Done():
		}
		break
	}
	m.logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if cerr := m.shutdown(); err == nil {
		err = cerr
	}
	return err
}

func (m *Main) shutdown() error {
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
	cfg, err := LoadConfig(m.ConfigPath)
	if err == nil {
		err = m.dir.Swap(cfg)
	}
	if err != nil {
		m.logger.Error("reload failed; keeping the previous configuration", "err", err)
		return
	}
	if err := m.svc.SetPolicy(cfg.policy()); err != nil {
		m.logger.Error("reload failed; keeping the previous policy", "err", err)
		return
	}
	m.logger.Info("configuration reloaded", "organizations", len(cfg.Organizations))
}

func (m *Main) loadConfig() (*FileConfig, error) {
	if m.ConfigPath != "" {
		return LoadConfig(m.ConfigPath)
	}
	return m.demoConfig()
}

// demo is what the first start without a configuration file keeps.
type demo struct {
	OrganizationID string `json:"organizationId"`
	OwnerID        string `json:"ownerId"`
	TokenSHA256    string `json:"tokenSha256"`
}

// demoConfig creates, once, a demo organization and its owner's token, and
// prints the token that one time.
func (m *Main) demoConfig() (*FileConfig, error) {
	path := filepath.Join(m.DataDir, "demo.json")
	var d demo
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		raw := make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, raw); err != nil {
			return nil, err
		}
		token := "lk_" + hex.EncodeToString(raw)
		sum := sha256.Sum256([]byte(token))
		d = demo{OrganizationID: "org-demo", OwnerID: "owner", TokenSHA256: hex.EncodeToString(sum[:])}
		b, _ := json.MarshalIndent(d, "", "  ")
		if err := writeFileAtomic(path, append(b, '\n')); err != nil {
			return nil, err
		}
		fmt.Fprintf(m.Stderr, "owner token: %s\n", token)
	default:
		return nil, err
	}
	return &FileConfig{
		Issuer:          "licensing.localhost",
		RequiredFeature: "selfHostingLicense",
		Plans: map[string]map[string]any{"business": {
			"selfHostingLicense": true, "maxCompanies": json.Number("0"), "maxUsersPerOrg": json.Number("0"),
		}},
		Organizations: []OrgConfig{{ID: d.OrganizationID, Name: "Demo Organization", OwnerID: d.OwnerID,
			Plan: "business", Active: true}},
		Tokens: []TokenConfig{{SHA256: d.TokenSHA256, UserID: d.OwnerID}},
	}, nil
}

// signingKeys loads the signing keys, generating missing ones into their
// files (mode 0600) once.
func (m *Main) signingKeys() (*licensing.SigningKeys, error) {
	load := func(path string, generate func() (crypto.Signer, error)) (crypto.Signer, error) {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			key, err := generate()
			if err != nil {
				return nil, err
			}
			pemBytes, err := licensing.MarshalPrivateKeyPEM(key)
			if err != nil {
				return nil, err
			}
			m.logger.Info("generated a signing key", "file", path)
			return key, writeFileAtomic(path, pemBytes)
		}
		if err != nil {
			return nil, err
		}
		key, err := licensing.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return key, nil
	}
	edPath := m.SigningKey
	if edPath == "" {
		edPath = filepath.Join(m.DataDir, "signing-ed25519.pem")
	}
	edKey, err := load(edPath, func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	})
	if err != nil {
		return nil, err
	}
	ed, ok := edKey.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", edPath)
	}
	var rk *rsa.PrivateKey
	if m.RSASigningKey != "" {
		key, err := load(m.RSASigningKey, func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 3072) })
		if err != nil {
			return nil, err
		}
		if rk, ok = key.(*rsa.PrivateKey); !ok {
			return nil, fmt.Errorf("%s: not an RSA key", m.RSASigningKey)
		}
	}
	return licensing.NewSigningKeys(ed, rk)
}

// pepper returns LICENSING_PEPPER (hex) or the pepper kept in the data
// directory, made on first start.
func (m *Main) pepper() ([]byte, error) {
	if v := m.Getenv("LICENSING_PEPPER"); v != "" {
		p, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(p) < licensing.MinPepperLength {
			return nil, errors.New("LICENSING_PEPPER must be at least 32 bytes, hex encoded")
		}
		return p, nil
	}
	path := filepath.Join(m.DataDir, "pepper")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		p := make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, p); err != nil {
			return nil, err
		}
		return p, writeFileAtomic(path, []byte(hex.EncodeToString(p)+"\n"))
	}
	if err != nil {
		return nil, err
	}
	p, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(p) < licensing.MinPepperLength {
		return nil, fmt.Errorf("%s: not a hex pepper of at least 32 bytes", path)
	}
	return p, nil
}

// writeFileAtomic writes a 0600 file through a synced temporary file and a
// rename, then syncs the directory.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
		out = append(out, p.Masked())
	}
	return out, nil
}

// logEvent logs an event: a validation, passed or failed, at debug level
// through the event queue (nothing at all unless debug is on), any other
// event at info, at once.
func (m *Main) logEvent(ctx context.Context, e licensing.Event) {
	if e.Type == licensing.EventKeyValidated || e.Type == licensing.EventValidationFailed {
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
// the request log is on: method, path (with any long hex run redacted, so a
// key pasted into a URL never reaches the log), status and duration. Query
// strings, headers and bodies are never logged. When it is off, next is
// returned as it is.
func (m *Main) logRequests(next http.Handler) http.Handler {
	if m.reqBuf == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		m.writeRequestLine(start, r.Method, redactPath(r.URL.Path), sw.status, time.Since(start).Round(time.Microsecond))
	})
}

// apiFirst hands requests under licensing.APIPrefix straight to api, which
// routes them itself (and cleans their paths as a ServeMux does), so the
// hot path pays for one routing step, not two; everything else goes to mux.
func apiFirst(api, mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, licensing.APIPrefix+"/") && r.Method != http.MethodConnect {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// redactPath replaces every run of 32 or more hex digits, and any path longer
// than 256 bytes, so no secret ends up in a log line.
func redactPath(p string) string {
	if len(p) <= 256 && longestHexRun(p) < 32 {
		return p // nothing to redact: no copy
	}
	if len(p) > 256 {
		p = p[:256] + "..."
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
	return b.String()
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
