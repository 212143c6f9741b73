package licensing

import (
	"net/http"
	"sync"
	"time"
)

// observeFailure reports the outcome of a validate request answered with
// status by the transport: 401 and 403 were reported by the Service.
func (h *Handler) observeFailure(rp reply, status int) {
	if h.obs == nil || !rp.validate {
		return
	}
	switch {
	case status == http.StatusTooManyRequests:
		h.obs.Validation(OutcomeRateLimited)
	case status >= 500:
		h.obs.Validation(OutcomeError)
	case status != http.StatusUnauthorized && status != http.StatusForbidden:
		h.obs.Validation(OutcomeInvalidInput)
	}
}

// statusRecorder remembers the status a handler sends. Recorders are pooled
// so that observing a request allocates nothing.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observed wraps serve so that each request is reported to the Observer
// under route; without an Observer it returns serve itself.
func (h *Handler) observed(route string, serve http.HandlerFunc) http.HandlerFunc {
	if h.obs == nil {
		return serve
	}
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := recorders.Get().(*statusRecorder)
		sw.ResponseWriter, sw.status = w, 0
		serve(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		sw.ResponseWriter = nil
		recorders.Put(sw)
		h.obs.Request(route, status, time.Since(start))
	}
}
