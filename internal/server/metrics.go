package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	runtimemetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/webhook"
)

// metrics is the reference server's licensing.Observer and the writer of
// GET /metrics in the Prometheus text exposition format, version 0.0.4.
// Recording is an atomic add on fixed arrays: no lock and no allocation on
// a request's path (a route seen for the first time is added under a mutex,
// once).
type metrics struct {
	start    time.Time
	routes   atomic.Pointer[map[string]*routeMetrics] // copied on write
	routesMu sync.Mutex
	outcomes [len(outcomeNames)]atomic.Uint64
	writes   [len(storeOps)]histogram
	writeErr [len(storeOps)]atomic.Uint64

	connsRefused atomic.Uint64 // connections closed over -max-conns-per-addr

	webhooks *webhook.Deliverer // nil: no webhooks configured
	// droppedEvents is the Service's DroppedEvents; nil before it runs.
	droppedEvents func() uint64

	health  func() error // nil: the store has no failed state
	active  atomic.Int64 // keys by state: counted at start and at each reload, kept by timedStore between
	revoked atomic.Int64
}

var outcomeNames = [...]licensing.Outcome{licensing.OutcomeValid, licensing.OutcomeMalformed, outcomeRevokedOrUnknown,
	licensing.OutcomeExpired, licensing.OutcomeInactive, licensing.OutcomeNotEligible, licensing.OutcomeSeatLimit, licensing.OutcomeRateLimited,
	licensing.OutcomeInvalidInput, licensing.OutcomeError, "other"}

// outcomeRevokedOrUnknown is the one outcome label of an unknown and of a
// revoked key. The validate answer is the same for both, and /metrics is
// served on the public listener: two labels would tell anyone who can
// scrape it, by the counter that moved, whether the key they just sent was
// ever issued. Which of the two it was is in the event log (debug level),
// not here. (A malformed key keeps its own label: whether a key's checksum
// holds, anyone computes from the key alone.)
const outcomeRevokedOrUnknown = "revoked_or_unknown"

// Store write operations, as the op label of the store metrics.
const (
	opCreate = iota
	opRevoke
	opRecord
)

var storeOps = [...]string{opCreate: "create_key", opRevoke: "revoke_key", opRecord: "record_validations"}

// buckets are the upper bounds of the latency histograms.
var buckets = [...]time.Duration{500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second}

// histogram counts observations per bucket (not cumulated: the last slot is
// above every bound) and their sum in nanoseconds.
type histogram struct {
	counts [len(buckets) + 1]atomic.Uint64
	sum    atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(buckets) && d > buckets[i] {
		i++
	}
	h.counts[i].Add(1)
	if d > 0 {
		h.sum.Add(uint64(d))
	}
}

// routeMetrics holds one route's requests by status and its latency.
type routeMetrics struct {
	status  [600]atomic.Uint64 // by HTTP status; anything outside 100..599 counts as 0
	latency histogram
}

var _ licensing.Observer = (*metrics)(nil)

func newMetrics() *metrics {
	m := &metrics{start: time.Now()}
	m.routes.Store(&map[string]*routeMetrics{})
	return m
}

// Request implements licensing.Observer.
func (m *metrics) Request(route string, status int, d time.Duration) {
	rm := (*m.routes.Load())[route]
	if rm == nil {
		rm = m.addRoute(route)
	}
	if status < 100 || status >= len(rm.status) {
		status = 0
	}
	rm.status[status].Add(1)
	rm.latency.observe(d)
}

func (m *metrics) addRoute(route string) *routeMetrics {
	m.routesMu.Lock()
	defer m.routesMu.Unlock()
	old := *m.routes.Load()
	if rm := old[route]; rm != nil {
		return rm
	}
	next := make(map[string]*routeMetrics, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	rm := new(routeMetrics)
	next[route] = rm
	m.routes.Store(&next)
	return rm
}

// Validation implements licensing.Observer. licensing.OutcomeUnknown and
// licensing.OutcomeRevoked are counted as one (outcomeRevokedOrUnknown).
func (m *metrics) Validation(outcome licensing.Outcome) {
	if outcome == licensing.OutcomeUnknown || outcome == licensing.OutcomeRevoked {
		outcome = outcomeRevokedOrUnknown
	}
	for i, name := range outcomeNames[:len(outcomeNames)-1] {
		if name == outcome {
			m.outcomes[i].Add(1)
			return
		}
	}
	m.outcomes[len(outcomeNames)-1].Add(1)
}

// observe counts the server's own routes (health, readiness, metrics).
func (m *metrics) observe(route string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		m.Request(route, sw.status, time.Since(start))
	}
}

// withEventLog returns wrapped with inner's event log (licensing.EventLog),
// when inner has one: the wrappers here embed licensing.Store, which would
// hide it from licensing.New.
func withEventLog(wrapped, inner licensing.Store) licensing.Store {
	l, ok := inner.(licensing.EventLog)
	if !ok {
		return wrapped
	}
	return struct {
		licensing.Store
		licensing.EventLog
	}{wrapped, l}
}

// timedStore is a licensing.Store whose writes are timed into metrics.
type timedStore struct {
	licensing.Store
	m *metrics
}

func (s timedStore) CreateKey(ctx context.Context, k licensing.Key) error {
	start := time.Now()
	err := s.Store.CreateKey(ctx, k)
	s.m.storeWrite(opCreate, time.Since(start), err)
	if err == nil {
		s.m.active.Add(1)
	}
	return err
}

func (s timedStore) RevokeKey(ctx context.Context, id string, at time.Time) (licensing.Key, error) {
	start := time.Now()
	k, err := s.Store.RevokeKey(ctx, id, at)
	s.m.storeWrite(opRevoke, time.Since(start), err)
	if err == nil && k.RevokedAt.Equal(at) { // revoked now, not before
		s.m.active.Add(-1)
		s.m.revoked.Add(1)
	}
	return k, err
}

func (s timedStore) RecordValidations(ctx context.Context, recs []licensing.ValidationRecord) error {
	start := time.Now()
	err := s.Store.RecordValidations(ctx, recs)
	s.m.storeWrite(opRecord, time.Since(start), err)
	return err
}

func (m *metrics) storeWrite(op int, d time.Duration, err error) {
	m.writes[op].observe(d)
	if err != nil {
		m.writeErr[op].Add(1)
	}
}

// instrument sets up the metrics for the opened store: its failed state
// (when it has an Err method, as the file store does), and the keys of the
// configured organizations by state, counted here (one listing of every
// key) and then kept up to date by the returned store, through which the
// Service writes. A reload counts them again (recountKeys).
func (m *Main) instrument(ctx context.Context) (licensing.Store, error) {
	m.metrics = newMetrics()
	if h, ok := m.store.(interface{ Err() error }); ok {
		m.metrics.health = h.Err
	}
	if err := m.recountKeys(ctx); err != nil {
		return nil, err
	}
	return timedStore{m.store, m.metrics}, nil
}

// recountKeys sets licensing_keys from the store: the keys of the
// organizations configured now, a page at a time (no memory per key).
// Creates and revokes during the count may be off by one each until the
// next count.
func (m *Main) recountKeys(ctx context.Context) error {
	var active, revoked int64
	for id := range m.dir.cur.Load().orgs {
		var after licensing.KeyCursor
		for {
			keys, err := m.store.ListKeys(ctx, id, after, 1000)
			if err != nil {
				return fmt.Errorf("count keys: %w", err)
			}
			for _, k := range keys {
				if k.Active {
					active++
				} else {
					revoked++
				}
			}
			if len(keys) < 1000 {
				break
			}
			after = keys[len(keys)-1].Cursor()
		}
	}
	m.metrics.active.Store(active)
	m.metrics.revoked.Store(revoked)
	return nil
}

// ServeHTTP answers GET /metrics.
func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	bw := bufio.NewWriter(w)
	m.write(bw)
	bw.Flush()
}

// write writes the exposition.
func (m *metrics) write(w io.Writer) {
	family := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	routes := *m.routes.Load()
	names := make([]string, 0, len(routes))
	for name := range routes {
		names = append(names, name)
	}
	slices.Sort(names)

	family("licensing_http_requests_total", "counter", "HTTP requests answered, by route pattern and status code.")
	for _, name := range names {
		rm := routes[name]
		for code := range rm.status {
			if n := rm.status[code].Load(); n > 0 {
				fmt.Fprintf(w, "licensing_http_requests_total{route=%s,code=\"%d\"} %d\n", labelValue(name), code, n)
			}
		}
	}
	family("licensing_http_request_duration_seconds", "histogram", "Time to answer an HTTP request, by route pattern.")
	for _, name := range names {
		writeHistogram(w, "licensing_http_request_duration_seconds", "route="+labelValue(name), &routes[name].latency)
	}
	family("licensing_validations_total", "counter", "Validations by outcome (an unknown and a revoked key count as one, revoked_or_unknown, as the answer does not tell them apart).")
	for i, name := range outcomeNames {
		fmt.Fprintf(w, "licensing_validations_total{outcome=%q} %d\n", name, m.outcomes[i].Load())
	}
	family("licensing_store_write_duration_seconds", "histogram", "Time the store took to write, by operation.")
	for i, op := range storeOps {
		writeHistogram(w, "licensing_store_write_duration_seconds", fmt.Sprintf("op=%q", op), &m.writes[i])
	}
	family("licensing_store_write_errors_total", "counter", "Store writes that returned an error, by operation.")
	for i, op := range storeOps {
		fmt.Fprintf(w, "licensing_store_write_errors_total{op=%q} %d\n", op, m.writeErr[i].Load())
	}
	family("licensing_connections_refused_total", "counter", "Connections closed as soon as accepted: their client address held -max-conns-per-addr open connections.")
	fmt.Fprintf(w, "licensing_connections_refused_total %d\n", m.connsRefused.Load())
	failed := 0
	if m.health != nil && m.health() != nil {
		failed = 1
	}
	family("licensing_store_failed", "gauge", "1 while the store is in its failed state and refuses writes, else 0.")
	fmt.Fprintf(w, "licensing_store_failed %d\n", failed)
	family("licensing_keys", "gauge", "License keys by state.")
	fmt.Fprintf(w, "licensing_keys{state=\"active\"} %d\nlicensing_keys{state=\"revoked\"} %d\n", m.active.Load(), m.revoked.Load())

	var dropped uint64
	if m.droppedEvents != nil {
		dropped = m.droppedEvents()
	}
	family("licensing_events_dropped_total", "counter", "Events the event log did not get: its writer's queue was full, or the store kept refusing them (logged).")
	fmt.Fprintf(w, "licensing_events_dropped_total %d\n", dropped)

	var hooks webhook.Stats
	if m.webhooks != nil {
		hooks = m.webhooks.Stats()
	}
	family("licensing_webhook_deliveries_total", "counter", "Webhook delivery attempts by outcome: success (answered 2xx), retry (failed, tried again), failed (the last attempt failed: the delivery was given up).")
	fmt.Fprintf(w, "licensing_webhook_deliveries_total{outcome=\"success\"} %d\nlicensing_webhook_deliveries_total{outcome=\"retry\"} %d\nlicensing_webhook_deliveries_total{outcome=\"failed\"} %d\n",
		hooks.Delivered, hooks.Retried, hooks.Failed)
	family("licensing_webhook_queue_depth", "gauge", fmt.Sprintf("Events in the log after the slowest webhook endpoint's cursor (at most %d).", webhook.MaxQueueDepth))
	fmt.Fprintf(w, "licensing_webhook_queue_depth %d\n", hooks.QueueDepth)
	family("licensing_webhook_oldest_undelivered_seconds", "gauge", "Age of the oldest event not yet delivered to every webhook endpoint; 0 when none waits.")
	fmt.Fprintf(w, "licensing_webhook_oldest_undelivered_seconds %s\n", seconds(int64(hooks.OldestAge)))

	samples := []runtimemetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	runtimemetrics.Read(samples)
	family("go_goroutines", "gauge", "Goroutines that currently exist.")
	fmt.Fprintf(w, "go_goroutines %d\n", runtime.NumGoroutine())
	if v := samples[0].Value; v.Kind() == runtimemetrics.KindUint64 {
		family("go_memstats_heap_alloc_bytes", "gauge", "Bytes of allocated heap objects.")
		fmt.Fprintf(w, "go_memstats_heap_alloc_bytes %d\n", v.Uint64())
	}
	if v := samples[1].Value; v.Kind() == runtimemetrics.KindUint64 {
		family("go_gc_cycles_total", "counter", "Completed garbage collection cycles.")
		fmt.Fprintf(w, "go_gc_cycles_total %d\n", v.Uint64())
	}
	family("go_info", "gauge", "The Go version the server was built with.")
	fmt.Fprintf(w, "go_info{version=%q} 1\n", runtime.Version())
	family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.")
	fmt.Fprintf(w, "process_start_time_seconds %s\n", seconds(m.start.UnixNano()))
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		family("process_open_fds", "gauge", "Open file descriptors (from /proc/self/fd).")
		fmt.Fprintf(w, "process_open_fds %d\n", len(fds))
	}
}

// writeHistogram writes the cumulative buckets, sum and count of h; the
// count is the +Inf bucket, so the three always agree.
func writeHistogram(w io.Writer, name, labels string, h *histogram) {
	var cum uint64
	for i, le := range buckets {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket{%s,le=%q} %d\n", name, labels, seconds(int64(le)), cum)
	}
	cum += h.counts[len(buckets)].Load()
	fmt.Fprintf(w, "%s_bucket{%s,le=\"+Inf\"} %d\n", name, labels, cum)
	fmt.Fprintf(w, "%s_sum{%s} %s\n", name, labels, seconds(int64(h.sum.Load())))
	fmt.Fprintf(w, "%s_count{%s} %d\n", name, labels, cum)
}

// seconds formats nanoseconds as seconds.
func seconds(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'g', -1, 64)
}

// labelValue writes a label value: backslash, double quote and newline escaped.
func labelValue(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
