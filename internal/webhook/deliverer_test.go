package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/webhook"
	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// testKey is an endpoint's HMAC key (32 bytes); testSecret is its whsec_ form.
var (
	testKey    = []byte("0123456789abcdef0123456789abcdef")
	testSecret = webhook.SecretPrefix + base64.StdEncoding.EncodeToString(testKey)
)

// memLog is an EventLog holding events in memory: what the deliverer reads.
type memLog struct {
	licensing.EventLog // the methods a deliverer does not call
	mu                 sync.Mutex
	events             []licensing.Event
}

// add appends an event of each type and returns them.
func (l *memLog) add(types ...licensing.EventType) []licensing.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []licensing.Event
	for _, t := range types {
		seq := uint64(len(l.events) + 1)
		e := licensing.Event{ID: fmt.Sprintf("evt-%d", seq), Seq: seq, Type: t, Time: time.Now().UTC().Truncate(time.Second),
			KeyID: "key-1", OrganizationID: "org-1", MaskedKey: "0123abcd...89abcdef", UserID: "owner"}
		l.events = append(l.events, e)
		out = append(out, e)
	}
	return out
}

func (l *memLog) EventsAfter(ctx context.Context, after uint64, limit int) ([]licensing.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []licensing.Event
	for _, e := range l.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver records deliveries and answers each with status(n), n counting
// from 1; status nil answers 204.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	status func(n int) int
	seen   chan delivery
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	r := &receiver{status: status, seen: make(chan delivery, 1000)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		d := delivery{header: req.Header.Clone(), body: b}
		r.mu.Lock()
		r.got = append(r.got, d)
		n := len(r.got)
		r.mu.Unlock()
		r.seen <- d
		code := http.StatusNoContent
		if r.status != nil {
			code = r.status(n)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

// next waits for the next delivery.
func (r *receiver) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-r.seen:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30 s")
		return delivery{}
	}
}

// run starts a Deliverer on cfg (fast retries unless set) and stops it
// when the test ends.
func run(t *testing.T, cfg webhook.Config) *webhook.Deliverer {
	t.Helper()
	if cfg.FirstRetry == 0 {
		cfg.FirstRetry = time.Millisecond
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	if cfg.MeasureInterval == 0 {
		cfg.MeasureInterval = 10 * time.Millisecond
	}
	d, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
	}
}

// verify checks a delivery's signature the way the Standard Webhooks
// specification says a receiver does.
func verify(d delivery, key []byte) bool {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", d.header.Get("webhook-id"), d.header.Get("webhook-timestamp"), d.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(d.header.Get("webhook-signature")), []byte(want))
}

func TestDeliverSignedEvents(t *testing.T) {
	is := is.New(t)
	log := &memLog{}
	events := log.add(licensing.EventKeyCreated, licensing.EventTokenIssued, licensing.EventKeyRevoked)
	rcv := newReceiver(t, nil)
	cursors := webhook.NewMemoryCursors()
	d := run(t, webhook.Config{Log: log, Cursors: cursors, Endpoints: []webhook.Endpoint{{URL: rcv.URL, Secret: testKey,
		Events: []licensing.EventType{licensing.EventKeyCreated, licensing.EventKeyRevoked}}}})

	for _, want := range []licensing.Event{events[0], events[2]} { // the token event is not wanted
		got := rcv.next(t)
		is.Equal(got.header.Get("webhook-id"), want.ID)              // webhook-id is the event id
		is.Equal(got.header.Get("Content-Type"), "application/json") // JSON body
		is.True(verify(got, testKey))                                // signature per Standard Webhooks
		ts, err := strconv.ParseInt(got.header.Get("webhook-timestamp"), 10, 64)
		is.NoErr(err)                                           // timestamp in Unix seconds
		is.True(time.Since(time.Unix(ts, 0)).Abs() < time.Hour) // timestamp is the attempt's time
		var e wire.Event
		is.NoErr(json.Unmarshal(got.body, &e))
		is.Equal(e.ID, want.ID)
		is.Equal(e.Type, string(want.Type))
		is.Equal(*e.KeyID, want.KeyID)
		is.Equal(*e.MaskedKey, want.MaskedKey)
		is.Equal(*e.Actor, "owner")
		is.True(time.Time(e.OccurredAt).Equal(want.Time))
	}
	waitFor(t, "cursor past the last event", func() bool {
		c, _, _ := cursors.LeaseCursor(context.Background(), rcv.URL, "observer", time.Now(), 0)
		return c == 3
	})
	is.Equal(d.Stats().Delivered, uint64(2))
	// A new event is delivered as it comes.
	later := log.add(licensing.EventKeyCreated)
	is.Equal(rcv.next(t).header.Get("webhook-id"), later[0].ID)
}

func TestDeliverRetriesThenSucceeds(t *testing.T) {
	is := is.New(t)
	log := &memLog{}
	events := log.add(licensing.EventKeyCreated, licensing.EventKeyRevoked)
	rcv := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	d := run(t, webhook.Config{Log: log, Cursors: webhook.NewMemoryCursors(),
		Endpoints: []webhook.Endpoint{{URL: rcv.URL, Secret: testKey}}})
	var ids []string
	for range 4 {
		ids = append(ids, rcv.next(t).header.Get("webhook-id"))
	}
	is.Equal(ids, []string{events[0].ID, events[0].ID, events[0].ID, events[1].ID}) // retried with the same id, in order
	waitFor(t, "stats", func() bool { return d.Stats().Delivered == 2 })
	s := d.Stats()
	is.Equal(s.Retried, uint64(2)) // two failed attempts
	is.Equal(s.Failed, uint64(0))
}

func TestDeliverGivesUp(t *testing.T) {
	is := is.New(t)
	log := &memLog{}
	events := log.add(licensing.EventKeyCreated, licensing.EventKeyRevoked)
	rcv := newReceiver(t, func(n int) int {
		if n <= 3 {
			return http.StatusInternalServerError // every attempt of the first event
		}
		return http.StatusAccepted
	})
	cursors := webhook.NewMemoryCursors()
	d := run(t, webhook.Config{Log: log, Cursors: cursors, MaxAttempts: 3,
		Endpoints: []webhook.Endpoint{{URL: rcv.URL, Secret: testKey}}})
	for range 3 {
		is.Equal(rcv.next(t).header.Get("webhook-id"), events[0].ID)
	}
	is.Equal(rcv.next(t).header.Get("webhook-id"), events[1].ID) // given up after 3 attempts, the endpoint moved on
	waitFor(t, "stats", func() bool { return d.Stats().Delivered == 1 })
	s := d.Stats()
	is.Equal(s.Failed, uint64(1))
	is.Equal(s.Retried, uint64(2))
}

// TestDeliverRetryWaitsAtMostMaxRetryWait: no wait between two attempts
// is longer than MaxRetryWait, the first one included (a FirstRetry above
// it is cut to it).
func TestDeliverRetryWaitsAtMostMaxRetryWait(t *testing.T) {
	is := is.New(t)
	log := &memLog{}
	events := log.add(licensing.EventKeyCreated)
	rcv := newReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	run(t, webhook.Config{Log: log, Cursors: webhook.NewMemoryCursors(), FirstRetry: time.Hour, MaxRetryWait: time.Millisecond,
		Endpoints: []webhook.Endpoint{{URL: rcv.URL, Secret: testKey}}})
	is.Equal(rcv.next(t).header.Get("webhook-id"), events[0].ID)
	is.Equal(rcv.next(t).header.Get("webhook-id"), events[0].ID) // retried after at most a millisecond, not an hour
}

func TestDeliverDoesNotFollowRedirects(t *testing.T) {
	is := is.New(t)
	log := &memLog{}
	log.add(licensing.EventKeyCreated)
	target := newReceiver(t, nil)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	d := run(t, webhook.Config{Log: log, Cursors: webhook.NewMemoryCursors(), MaxAttempts: 2,
		Endpoints: []webhook.Endpoint{{URL: redirect.URL, Secret: testKey}}})
	waitFor(t, "given up", func() bool { return d.Stats().Failed == 1 })
	is.Equal(len(target.seen), 0)            // the redirect was not followed
	is.Equal(d.Stats().Delivered, uint64(0)) // a 3xx is not success
}

func TestDeliverTimesOutHangingReceiver(t *testing.T) {
	is := is.New(t)
	log := &memLog{}
	log.add(licensing.EventKeyCreated)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	d := run(t, webhook.Config{Log: log, Cursors: webhook.NewMemoryCursors(), MaxAttempts: 2, Timeout: 50 * time.Millisecond,
		Endpoints: []webhook.Endpoint{{URL: hang.URL, Secret: testKey}}})
	waitFor(t, "given up", func() bool { return d.Stats().Failed == 1 }) // each attempt ended by the timeout
	is.Equal(d.Stats().Retried, uint64(1))
}

func TestDeliverReadsBoundedAnswer(t *testing.T) {
	is := is.New(t)
	log := &memLog{}
	log.add(licensing.EventKeyCreated)
	sent := make(chan int64, 1)
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 32<<10)
		var n int64
		for range 1024 { // 32 MiB unless the deliverer stops reading
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		sent <- n
	}))
	defer huge.Close()
	d := run(t, webhook.Config{Log: log, Cursors: webhook.NewMemoryCursors(),
		Endpoints: []webhook.Endpoint{{URL: huge.URL, Secret: testKey}}})
	n := <-sent
	is.True(n < 32<<20) // the deliverer closed the connection after webhook.MaxAnswerBytes
	waitFor(t, "delivered", func() bool { return d.Stats().Delivered == 1 })
}

// countingCursors counts the leases asked for.
type countingCursors struct {
	webhook.Cursors
	leases atomic.Int64
}

func (c *countingCursors) LeaseCursor(ctx context.Context, endpoint, holder string, now time.Time, ttl time.Duration) (uint64, bool, error) {
	c.leases.Add(1)
	return c.Cursors.LeaseCursor(ctx, endpoint, holder, now, ttl)
}

func TestDeliverOnlyWithTheLease(t *testing.T) {
	is := is.New(t)
	log := &memLog{}
	log.add(licensing.EventKeyCreated)
	rcv := newReceiver(t, nil)
	cursors := &countingCursors{Cursors: webhook.NewMemoryCursors()}
	_, ok, err := cursors.LeaseCursor(context.Background(), rcv.URL, "another-server", time.Now(), time.Hour)
	is.NoErr(err)
	is.True(ok)
	d := run(t, webhook.Config{Log: log, Cursors: cursors, Endpoints: []webhook.Endpoint{{URL: rcv.URL, Secret: testKey}}})
	waitFor(t, "five tries at the lease", func() bool { return cursors.leases.Load() > 5 })
	is.Equal(len(rcv.seen), 0) // another process holds the endpoint's lease
	is.Equal(d.Stats().Delivered, uint64(0))
	is.Equal(d.Stats().QueueDepth, 0) // the queue is the lease holder's to measure
}

func TestDeliverQueueMetrics(t *testing.T) {
	is := is.New(t)
	log := &memLog{}
	release := make(chan struct{})
	blocked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer blocked.Close()
	defer close(release)
	log.add(licensing.EventKeyCreated, licensing.EventKeyCreated, licensing.EventKeyCreated)
	d := run(t, webhook.Config{Log: log, Cursors: webhook.NewMemoryCursors(), Timeout: time.Hour,
		Endpoints: []webhook.Endpoint{{URL: blocked.URL, Secret: testKey}}})
	waitFor(t, "queue measured", func() bool { return d.Stats().QueueDepth == 3 })
	is.True(d.Stats().OldestAge > 0) // the first undelivered event's age
}

func TestNewRefusesBadConfig(t *testing.T) {
	log, cursors := &memLog{}, webhook.NewMemoryCursors()
	for _, tc := range []struct {
		name string
		cfg  webhook.Config
	}{
		{"no log", webhook.Config{Cursors: cursors}},
		{"no cursors", webhook.Config{Log: log}},
		{"ftp URL", webhook.Config{Log: log, Cursors: cursors, Endpoints: []webhook.Endpoint{{URL: "ftp://x", Secret: testKey}}}},
		{"short secret", webhook.Config{Log: log, Cursors: cursors, Endpoints: []webhook.Endpoint{{URL: "https://x", Secret: testKey[:10]}}}},
		{"same URL twice", webhook.Config{Log: log, Cursors: cursors, Endpoints: []webhook.Endpoint{{URL: "https://x", Secret: testKey}, {URL: "https://x", Secret: testKey}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			_, err := webhook.New(tc.cfg)
			is.True(err != nil)
		})
	}
}
