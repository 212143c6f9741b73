package server

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"time"

	"github.com/licensekit/licensing"
)

// opsFlags defines the operator's flags: TLS and the shutdown delay.
func (m *Main) opsFlags(fs *flag.FlagSet) {
	env := func(name string) string { return m.Getenv(name) }
	fs.StringVar(&m.TLSCert, "tls-cert", env("LICENSING_TLS_CERT"), "TLS certificate (PEM, chain first); with -tls-key serves HTTPS; reloaded on SIGHUP (LICENSING_TLS_CERT)")
	fs.StringVar(&m.TLSKey, "tls-key", env("LICENSING_TLS_KEY"), "TLS private key (PEM) of -tls-cert (LICENSING_TLS_KEY)")
	fs.IntVar(&m.MaxConnsPerAddr, "max-conns-per-addr", m.envInt("LICENSING_MAX_CONNS_PER_ADDR", defaultMaxConnsPerAddr), "open connections one client address may hold (the TCP peer's; IPv6 by /64; -trusted-proxies are not capped); one more is closed at once; 0 turns the cap off (LICENSING_MAX_CONNS_PER_ADDR)")
	fs.DurationVar(&m.ShutdownDelay, "shutdown-delay", m.envDur("LICENSING_SHUTDOWN_DELAY", 0), "on SIGTERM, keep serving with /readyz answering 503 this long before shutting down, so a load balancer can stop sending (LICENSING_SHUTDOWN_DELAY)")
}

// drain keeps serving for ShutdownDelay once /readyz answers 503, or until
// a second signal (drainCut).
func (m *Main) drain() {
	if m.ShutdownDelay > 0 {
		m.logger.Info("draining before shutdown: /readyz answers 503; a second SIGTERM or SIGINT ends the drain", "delay", m.ShutdownDelay.String())
		t := time.NewTimer(m.ShutdownDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-m.drainCut:
			m.logger.Info("drain ended by a second signal")
		}
	}
}

// opsRoutes registers the operator's routes beside the API: /healthz
// (liveness: 200 while the process serves), /readyz (readiness: 503 with the
// reason while the store is in its failed state or the server shuts down)
// and /metrics.
func (m *Main) opsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", m.metrics.observe("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	}))
	mux.HandleFunc("GET /readyz", m.metrics.observe("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		reason := ""
		switch {
		case m.stopping.Load():
			reason = "shutting down"
		case m.metrics.health != nil && errors.Is(m.metrics.health(), licensing.ErrStoreUnavailable):
			reason = "store unreachable; refusing requests that need it" // the cause is in the log, not on the public listener
		case m.metrics.health != nil && m.metrics.health() != nil:
			reason = "store failed; refusing writes"
		}
		if reason != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"status":"not ready","reason":"`+reason+`"}`+"\n")
			return
		}
		io.WriteString(w, `{"status":"ready"}`+"\n")
	}))
	mux.Handle("GET /metrics", m.metrics.observe("GET /metrics", m.metrics.ServeHTTP))
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		mux.HandleFunc(path, m.metrics.observe(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			io.WriteString(w, `{"error":"Method not allowed; use GET."}`+"\n")
		}))
	}
}
