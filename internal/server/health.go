package server

import (
	"io"
	"net/http"
)

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
		case m.metrics.health != nil && m.metrics.health() != nil:
			reason = "store failed; refusing writes" // the cause is in the log, not on the public listener
		}
		if reason != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"status":"not ready","reason":"`+reason+`"}`+"\n")
			return
		}
		io.WriteString(w, `{"status":"ready"}`+"\n")
	}))
	mux.Handle("GET /metrics", m.metrics.observe("GET /metrics", m.metrics.ServeHTTP))
}
