package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensekit/licensing"
)

// Defaults of Config, used for a zero field.
const (
	DefaultTimeout      = 10 * time.Second // one attempt, the receiver's answer included
	DefaultFirstRetry   = 5 * time.Second  // the wait before the second attempt; each later wait doubles
	DefaultMaxRetryWait = 5 * time.Minute  // no wait between two attempts is longer
	DefaultMaxAttempts  = 10               // then the delivery is given up
	DefaultMaxRetryTime = time.Hour        // from the first attempt: no attempt starts later
	DefaultPollInterval = time.Second      // how often an idle endpoint looks for new events
	DefaultLeaseTTL     = 30 * time.Second // an endpoint's lease, renewed while delivering
	DefaultBatchSize    = 100              // events read from the log at a time
	// MaxAnswerBytes is how much of a receiver's answer is read (then the
	// connection is closed): the body is not used, only the status.
	MaxAnswerBytes = 64 << 10
	// MaxQueueDepth bounds the queue-depth figure of Stats: counting reads
	// that many events from the log.
	MaxQueueDepth = 10000
	// DefaultMeasureInterval is how often Stats' queue figures are measured.
	DefaultMeasureInterval = 5 * time.Second
	// MaxEndpoints bounds Config.Endpoints: each has one goroutine and at
	// most one request in flight.
	MaxEndpoints = 32
)

// Endpoint is one receiver of deliveries.
type Endpoint struct {
	// URL receives a POST per event; it names the endpoint's cursor, so
	// a URL never seen before starts at the log's beginning (every
	// retained event).
	URL string
	// Secret is the HMAC key (ParseSecret of the "whsec_" secret).
	Secret []byte
	// Events are the types delivered; empty: every type.
	Events []licensing.EventType
}

// Config configures a Deliverer. Log, Cursors and Endpoints are required;
// every other zero field takes its default.
type Config struct {
	Log       licensing.EventLog
	Cursors   Cursors
	Endpoints []Endpoint
	// Holder names this process in the endpoints' leases; "": the host
	// name, the process id and a random number.
	Holder string
	Logger *slog.Logger // nil: no log

	// Timeout bounds one attempt: connecting, sending, and the answer.
	Timeout time.Duration
	// An attempt that fails (a network error, a timeout, any status but
	// 2xx, a redirect, which is not followed) is retried after FirstRetry,
	// then after twice as long each time up to MaxRetryWait (a FirstRetry
	// above MaxRetryWait is cut to it), each wait
	// cut by a random part of up to half (jitter), until MaxAttempts
	// attempts were made or the next attempt would start more than
	// MaxRetryTime after the first: then the delivery is given up
	// (logged at error level and counted) and the endpoint moves on.
	FirstRetry   time.Duration
	MaxRetryWait time.Duration
	MaxAttempts  int
	MaxRetryTime time.Duration
	// PollInterval is how often an endpoint with nothing to send reads
	// the log again.
	PollInterval time.Duration
	// LeaseTTL is how long an endpoint's lease lasts unless renewed; it
	// is raised to three times Timeout when shorter.
	LeaseTTL  time.Duration
	BatchSize int
	// MeasureInterval is how often the queue's depth and oldest event are
	// measured for Stats (reading up to MaxQueueDepth events).
	MeasureInterval time.Duration
	// Transport sends the requests; nil: a transport of its own (proxy
	// from the environment, as http.DefaultTransport).
	Transport http.RoundTripper
}

// Deliverer delivers the events of an EventLog to endpoints, at least
// once, per the Standard Webhooks specification: each event is a POST of
// its JSON (EventBody) with the headers IDHeader (the event's id, the same
// on every attempt and after a restart), TimestampHeader and
// SignatureHeader. Each endpoint has its own goroutine, delivers its
// events in log order, one request at a time, and keeps its progress in
// Cursors after each event delivered or given up; it delivers only while
// it holds the endpoint's lease, so with several processes on one store
// each delivery is attempted by one of them at a time. It reads the log
// and writes the cursors only: it never holds up the Service.
type Deliverer struct {
	cfg    Config
	client *http.Client
	eps    []*endpoint

	delivered, retried, failed atomic.Uint64
	depth                      atomic.Int64
	oldest                     atomic.Int64 // Unix nanoseconds of the oldest undelivered event; 0: none
}

type endpoint struct {
	Endpoint
	name   string                       // scheme and host: what the log shows (the path or query may hold a token)
	wants  map[licensing.EventType]bool // nil: every type
	cursor atomic.Uint64                // last known
	known  atomic.Bool                  // cursor was read once
}

// New checks cfg and returns a Deliverer; Run starts it.
func New(cfg Config) (*Deliverer, error) {
	switch {
	case cfg.Log == nil:
		return nil, errors.New("webhook: Config.Log is nil: deliveries read the store's event log")
	case cfg.Cursors == nil:
		return nil, errors.New("webhook: Config.Cursors is nil: deliveries keep their progress there")
	case len(cfg.Endpoints) > MaxEndpoints:
		return nil, fmt.Errorf("webhook: %d endpoints: at most %d", len(cfg.Endpoints), MaxEndpoints)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.FirstRetry, DefaultFirstRetry)
	def(&cfg.MaxRetryWait, DefaultMaxRetryWait)
	def(&cfg.MaxRetryTime, DefaultMaxRetryTime)
	def(&cfg.PollInterval, DefaultPollInterval)
	def(&cfg.LeaseTTL, DefaultLeaseTTL)
	def(&cfg.MeasureInterval, DefaultMeasureInterval)
	cfg.LeaseTTL = max(cfg.LeaseTTL, 3*cfg.Timeout)
	cfg.FirstRetry = min(cfg.FirstRetry, cfg.MaxRetryWait) // no wait is longer, the first neither
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		cfg.Holder = host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(rand.Uint64(), 36)
	}
	if cfg.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = cfg.Timeout
		t.MaxIdleConnsPerHost = 1 // one request at a time per endpoint
		cfg.Transport = t
	}
	d := &Deliverer{cfg: cfg, client: &http.Client{
		Transport:     cfg.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	seen := map[string]bool{}
	for i, e := range cfg.Endpoints {
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("webhook: endpoint %d: the URL is not an http or https URL", i)
		}
		if seen[e.URL] {
			return nil, fmt.Errorf("webhook: endpoint %d: the same URL as an earlier endpoint", i)
		}
		seen[e.URL] = true
		if len(e.Secret) < MinSecretBytes || len(e.Secret) > MaxSecretBytes {
			return nil, fmt.Errorf("webhook: endpoint %d: the secret must be %d to %d bytes", i, MinSecretBytes, MaxSecretBytes)
		}
		ep := &endpoint{Endpoint: e, name: u.Scheme + "://" + u.Host}
		if len(e.Events) > 0 {
			ep.wants = map[licensing.EventType]bool{}
			for _, t := range e.Events {
				ep.wants[t] = true
			}
		}
		d.eps = append(d.eps, ep)
	}
	return d, nil
}

// Run delivers until ctx ends, then returns once no request is in flight.
// A delivery cut short by ctx is not committed: it is made again by the
// next Run (with the same webhook-id).
func (d *Deliverer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, ep := range d.eps {
		wg.Go(func() { d.runEndpoint(ctx, ep) })
	}
	wg.Go(func() { d.measure(ctx) })
	wg.Wait()
}

// Stats are a Deliverer's figures for /metrics.
type Stats struct {
	Delivered uint64 // attempts answered 2xx
	Retried   uint64 // attempts that failed and are tried again
	Failed    uint64 // deliveries given up
	// QueueDepth is the number of events after the slowest endpoint's
	// cursor, at most MaxQueueDepth; OldestAge is the age of the first of
	// them (0: none). Both are measured every Config.MeasureInterval, over
	// the endpoints whose lease this process holds (0 when it holds none).
	QueueDepth int
	OldestAge  time.Duration
}

// Stats returns the figures so far.
func (d *Deliverer) Stats() Stats {
	s := Stats{Delivered: d.delivered.Load(), Retried: d.retried.Load(), Failed: d.failed.Load(),
		QueueDepth: int(d.depth.Load())}
	if o := d.oldest.Load(); o != 0 {
		s.OldestAge = max(time.Since(time.Unix(0, o)), 0)
	}
	return s
}

// measure keeps the queue's depth and oldest event up to date.
func (d *Deliverer) measure(ctx context.Context) {
	for {
		var slowest uint64
		held := false
		for _, ep := range d.eps {
			if !ep.known.Load() { // another process holds it: its figures are that process's
				continue
			}
			if c := ep.cursor.Load(); !held || c < slowest {
				slowest = c
			}
			held = true
		}
		var events []licensing.Event
		var err error
		if held {
			events, err = d.cfg.Log.EventsAfter(ctx, slowest, MaxQueueDepth)
		}
		if err == nil {
			d.depth.Store(int64(len(events)))
			if len(events) > 0 {
				d.oldest.Store(events[0].Time.UnixNano())
			} else {
				d.oldest.Store(0)
			}
		}
		if !sleep(ctx, d.cfg.MeasureInterval) {
			return
		}
	}
}

// result is what became of one event's delivery.
type result int

const (
	delivered result = iota
	gaveUp
	interrupted // ctx ended or the lease was lost: not committed
)

func (d *Deliverer) runEndpoint(ctx context.Context, ep *endpoint) {
	log := d.cfg.Logger.With("endpoint", ep.name)
	for ctx.Err() == nil {
		cursor, ok, err := d.cfg.Cursors.LeaseCursor(ctx, ep.URL, d.cfg.Holder, time.Now(), d.cfg.LeaseTTL)
		var events []licensing.Event
		if err == nil && ok {
			ep.cursor.Store(cursor)
			ep.known.Store(true)
			events, err = d.cfg.Log.EventsAfter(ctx, cursor, d.cfg.BatchSize)
		} else if err == nil {
			ep.known.Store(false)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("webhook: read the event log or the delivery cursor; trying again", "err", err)
		}
		if len(events) == 0 {
			sleep(ctx, d.cfg.PollInterval)
			continue
		}
		d.deliverBatch(ctx, log, ep, events)
	}
}

// deliverBatch delivers events in order, committing the cursor after each
// one delivered or given up (and after the last, for events the endpoint
// does not want). It returns early when interrupted.
func (d *Deliverer) deliverBatch(ctx context.Context, log *slog.Logger, ep *endpoint, events []licensing.Event) {
	var pending uint64 // a skipped event's Seq not yet committed
	for _, e := range events {
		if ep.wants != nil && !ep.wants[e.Type] {
			pending = e.Seq
			continue
		}
		if d.deliver(ctx, log, ep, e) == interrupted {
			d.commit(ctx, log, ep, pending)
			return
		}
		pending = 0
		if !d.commit(ctx, log, ep, e.Seq) {
			return
		}
	}
	d.commit(ctx, log, ep, pending)
}

// commit moves ep's cursor to seq (nothing for 0) and reports whether the
// endpoint may go on.
func (d *Deliverer) commit(ctx context.Context, log *slog.Logger, ep *endpoint, seq uint64) bool {
	if seq == 0 {
		return true
	}
	err := d.cfg.Cursors.CommitCursor(context.WithoutCancel(ctx), ep.URL, d.cfg.Holder, seq, time.Now(), d.cfg.LeaseTTL)
	if err != nil {
		if !errors.Is(err, ErrLeaseLost) {
			log.Error("webhook: save the delivery cursor; the event may be delivered again", "seq", seq, "err", err)
			sleep(ctx, d.cfg.PollInterval)
		}
		return false
	}
	ep.cursor.Store(seq)
	return true
}

// deliver makes the attempts of one event.
func (d *Deliverer) deliver(ctx context.Context, log *slog.Logger, ep *endpoint, e licensing.Event) result {
	body, err := EventBody(e)
	if err != nil { // cannot happen for an Event's fields; counted as given up
		d.failed.Add(1)
		log.Error("webhook: encode the event; delivery given up", "event", e.ID, "err", err)
		return gaveUp
	}
	first := time.Now()
	wait := d.cfg.FirstRetry
	for attempt := 1; ; attempt++ {
		err := d.post(ctx, ep, e.ID, body)
		if err == nil {
			d.delivered.Add(1)
			return delivered
		}
		if ctx.Err() != nil {
			return interrupted
		}
		jittered := wait - time.Duration(rand.Int64N(int64(wait/2)+1))
		if attempt >= d.cfg.MaxAttempts || time.Since(first)+jittered > d.cfg.MaxRetryTime {
			d.failed.Add(1)
			log.Error("webhook: delivery given up", "event", e.ID, "type", e.Type, "seq", e.Seq, "attempts", attempt, "err", err)
			return gaveUp
		}
		d.retried.Add(1)
		log.Warn("webhook: delivery failed; trying again", "event", e.ID, "attempt", attempt, "retry_in", jittered.Round(time.Millisecond), "err", err)
		if !d.wait(ctx, ep, e.Seq, jittered) {
			return interrupted
		}
		wait = min(2*wait, d.cfg.MaxRetryWait)
	}
}

// wait sleeps for dur, renewing ep's lease every third of its TTL, and
// reports whether to attempt again: false when ctx ended, the lease was
// lost, or another holder already moved the cursor to seq.
func (d *Deliverer) wait(ctx context.Context, ep *endpoint, seq uint64, dur time.Duration) bool {
	for dur > 0 {
		step := min(dur, d.cfg.LeaseTTL/3)
		if !sleep(ctx, step) {
			return false
		}
		dur -= step
		cursor, ok, err := d.cfg.Cursors.LeaseCursor(ctx, ep.URL, d.cfg.Holder, time.Now(), d.cfg.LeaseTTL)
		if err == nil && (!ok || cursor >= seq) {
			return false
		}
	}
	return true
}

// post makes one attempt.
func (d *Deliverer) post(ctx context.Context, ep *endpoint, id string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "licensing-webhooks")
	req.Header.Set(IDHeader, id)
	req.Header.Set(TimestampHeader, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(SignatureHeader, Sign(ep.Secret, id, now, body))
	resp, err := d.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which may hold a token
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, MaxAnswerBytes))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered %d", resp.StatusCode)
	}
	return nil
}

// sleep waits for d or ctx and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// EventTypes are the event types an endpoint may ask for: those of the
// events the log keeps. EventKeyValidated is not one (successes are never
// logged), so an endpoint that asks for it alone is refused rather than
// left waiting for events that never come.
var EventTypes = []licensing.EventType{
	licensing.EventKeyCreated, licensing.EventKeyRevoked, licensing.EventKeyRotated, licensing.EventKeyRenewed,
	licensing.EventTokenIssued, licensing.EventKeyActivated, licensing.EventKeyShared,
	licensing.EventSeatLimitReached, licensing.EventKeyExpiring, licensing.EventKeyExpired,
	licensing.EventInstanceReleased, licensing.EventValidationFailed,
}

// KnownEventType reports whether t is one of EventTypes.
func KnownEventType(t licensing.EventType) bool { return slices.Contains(EventTypes, t) }
