package server

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/licensekit/licensing"
)

// Logging of the reference server.
//
// By default a validation writes nothing: the request log is off
// (-request-log), and the key.validated and key.validation_failed events are
// at debug level, below the default -log-level info. Owner actions (create,
// revoke, token) and key.shared are logged at info, errors at error.
//
// When the request log is on, its lines go through a buffer that is written
// every requestLogFlush or when it holds requestLogBuffer bytes, and at
// shutdown; other lines are written at once. When debug is on, the
// validation events are handed to a goroutine through a bounded queue, so
// no request waits for the log; events that find the queue full are
// dropped and counted, and the count is logged.

const (
	requestLogFlush  = 200 * time.Millisecond
	requestLogBuffer = 32 << 10
	eventQueue       = 4096
)

// parseLevel reads debug, info, warn or error.
func parseLevel(flagName, s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil || strings.ContainsAny(s, "+-") {
		return 0, fmt.Errorf("%s %q: want debug, info, warn or error", flagName, s)
	}
	return l, nil
}

// newHandler returns a handler of the configured format on w.
func (m *Main) newHandler(w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: m.logLevel}
	if m.LogFormat == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// Logger returns the server's logger, for the stores of Stores, which are
// opened after it is made.
func (m *Main) Logger() *slog.Logger { return m.logger }

// startLogging makes the logger, the request logger (when on) and the
// event queue.
func (m *Main) startLogging() {
	m.logger = slog.New(m.newHandler(m.Stderr))
	if m.requestLogOn {
		m.reqBuf = newBufferedWriter(m.Stderr, requestLogBuffer, requestLogFlush)
	}
	m.events = newEventLog(m.logger)
}

// stopLogging writes what the request log and the event queue still hold.
func (m *Main) stopLogging() {
	if m.events != nil {
		m.events.close()
	}
	if m.reqBuf != nil {
		m.reqBuf.Close()
	}
}

// eventLog writes validation events from its own goroutine.
type eventLog struct {
	logger  *slog.Logger
	queue   chan licensing.Event
	dropped atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func newEventLog(logger *slog.Logger) *eventLog {
	l := &eventLog{logger: logger, queue: make(chan licensing.Event, eventQueue),
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *eventLog) run() {
	defer close(l.done)
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case e := <-l.queue:
			writeEvent(l.logger, slog.LevelDebug, e)
		case <-t.C:
			l.reportDropped()
		case <-l.stop:
			for {
				select {
				case e := <-l.queue:
					writeEvent(l.logger, slog.LevelDebug, e)
				default:
					l.reportDropped()
					return
				}
			}
		}
	}
}

func (l *eventLog) reportDropped() {
	if n := l.dropped.Swap(0); n > 0 {
		l.logger.Warn("validation events dropped: the log could not keep up", "dropped", n)
	}
}

// add queues e without waiting; a full queue drops it.
func (l *eventLog) add(e licensing.Event) {
	select {
	case l.queue <- e:
	default:
		l.dropped.Add(1)
	}
}

func (l *eventLog) close() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

// writeEvent logs e: ids, masked key, reason; never a full key or token.
func writeEvent(logger *slog.Logger, level slog.Level, e licensing.Event) {
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs, slog.String("type", string(e.Type)))
	for _, kv := range [...][2]string{{"key_id", e.KeyID}, {"org", e.OrganizationID}, {"masked_key", e.MaskedKey},
		{"user", e.UserID}, {"reason", string(e.Outcome)}, {"rotated_to", e.RotatedTo}} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	if e.InstanceCount > 0 {
		attrs = append(attrs, slog.Int("instances", e.InstanceCount))
	}
	if !e.ExpiresAt.IsZero() {
		attrs = append(attrs, slog.Time("expires_at", e.ExpiresAt))
	}
	logger.LogAttrs(context.Background(), level, "event", attrs...)
}

// bufferedWriter collects writes and passes them on when it holds max
// bytes, every interval, and on Flush and Close. It is safe for concurrent
// use; each Write reaches w whole and in order. A full buffer is swapped
// for a spare one and written to w outside mu, so requests keep logging
// while it is written.
type bufferedWriter struct {
	mu    sync.Mutex // guards buf, spare, max
	wmu   sync.Mutex // one write to w at a time: taken under mu, so in order
	w     io.Writer
	buf   []byte
	spare []byte // the buffer last written, to be the next buf
	max   int
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newBufferedWriter(w io.Writer, max int, every time.Duration) *bufferedWriter {
	b := &bufferedWriter{w: w, buf: make([]byte, 0, max), max: max,
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.Flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	var flushErr error // what was buffered before p failed to go out: p still goes in
	if len(b.buf)+len(p) > b.max {
		flushErr = b.flushUnlock()
		b.mu.Lock()
	}
	if len(p) > b.max { // larger than a buffer (or after Close): at once, in order
		b.wmu.Lock()
		b.mu.Unlock()
		defer b.wmu.Unlock()
		n, err := b.w.Write(p)
		return n, cmp.Or(err, flushErr)
	}
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	return len(p), flushErr
}

// Flush passes on what is buffered.
func (b *bufferedWriter) Flush() error {
	b.mu.Lock()
	return b.flushUnlock()
}

// flushUnlock, called with mu held, swaps the buffer out, releases mu and
// writes what it held.
func (b *bufferedWriter) flushUnlock() error {
	if len(b.buf) == 0 {
		b.mu.Unlock()
		return nil
	}
	full := b.buf
	b.buf, b.spare = b.spare[:0], nil
	if cap(b.buf) == 0 {
		b.buf = make([]byte, 0, max(b.max, 0))
	}
	b.wmu.Lock() // before mu is released: writes stay in order
	b.mu.Unlock()
	_, err := b.w.Write(full)
	b.wmu.Unlock()
	b.mu.Lock()
	if b.spare == nil {
		b.spare = full[:0]
	}
	b.mu.Unlock()
	return err
}

// Close stops the timer and flushes. Writes after Close go through at once.
func (b *bufferedWriter) Close() error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	b.mu.Lock()
	b.max = 0
	return b.flushUnlock()
}

// checkLogFlags reads -log-format, -log-level and -request-log.
func (m *Main) checkLogFlags() error {
	switch m.LogFormat {
	case "", "text":
		m.LogFormat = "text"
	case "json":
	default:
		return fmt.Errorf("-log-format %q: want text or json", m.LogFormat)
	}
	if m.LogLevel == "" {
		m.LogLevel = "info"
	}
	l, err := parseLevel("-log-level", m.LogLevel)
	if err != nil {
		return err
	}
	m.logLevel = l
	m.requestLogOn = false
	if m.RequestLog == "" || m.RequestLog == "off" {
		return nil
	}
	rl, err := parseLevel("-request-log", m.RequestLog)
	if err != nil {
		return fmt.Errorf("%w, or off", err)
	}
	if rl < l {
		return fmt.Errorf("-request-log %s is below -log-level %s: no request line would be written", m.RequestLog, m.LogLevel)
	}
	m.requestLogOn, m.requestLevel = true, rl
	return nil
}

// writeRequestLine writes one request line to the request log as slog's
// handler of the chosen format would write it (text: logfmt, json: one
// object), appended by hand: slog's generic path (a record, the caller's
// program counter, attribute dispatch) costs more than the line.
func (m *Main) writeRequestLine(t time.Time, method, path string, status int, d time.Duration) {
	var arr [384]byte
	b := arr[:0]
	level := m.requestLevel.String()
	if m.LogFormat == "json" {
		b = append(b, `{"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","level":"`...)
		b = append(b, level...)
		b = append(b, `","msg":"request","method":`...)
		b = appendJSONString(b, method)
		b = append(b, `,"path":`...)
		b = appendJSONString(b, path)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, int64(d), 10)
		b = append(b, "}\n"...)
	} else {
		b = append(b, "time="...)
		b = t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, " level="...)
		b = append(b, level...)
		b = append(b, " msg=request method="...)
		b = appendLogfmtValue(b, method)
		b = append(b, " path="...)
		b = appendLogfmtValue(b, path)
		b = append(b, " status="...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, " duration="...)
		b = append(b, d.String()...)
		b = append(b, '\n')
	}
	m.reqBuf.Write(b)
}

// appendLogfmtValue appends s bare, or quoted (strconv.Quote) when slog's
// text handler would quote it: empty, or holding a space, '=', '"', or a
// character that is not printable or not valid UTF-8.
func appendLogfmtValue(b []byte, s string) []byte {
	if s == "" {
		return append(b, `""`...)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' {
				return strconv.AppendQuote(b, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.AppendQuote(b, s)
		}
		i += size
	}
	return append(b, s...)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
