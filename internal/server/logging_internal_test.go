package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestLogFlags(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		wantErr   string
		level     slog.Level
		requestOn bool
		reqLevel  slog.Level
	}{
		{"defaults: info, no request log", nil, "", slog.LevelInfo, false, 0},
		{"json, debug, request log at debug", []string{"-log-format", "json", "-log-level", "debug", "-request-log", "debug"}, "", slog.LevelDebug, true, slog.LevelDebug},
		{"request log at warn", []string{"-request-log", "warn"}, "", slog.LevelInfo, true, slog.LevelWarn},
		{"upper case level", []string{"-log-level", "WARN", "-request-log", "ERROR"}, "", slog.LevelWarn, true, slog.LevelError},
		{"request log off explicitly", []string{"-request-log", "off"}, "", slog.LevelInfo, false, 0},
		{"unknown format", []string{"-log-format", "xml"}, "-log-format", 0, false, 0},
		{"unknown level", []string{"-log-level", "verbose"}, "-log-level", 0, false, 0},
		{"level with offset", []string{"-log-level", "info+2"}, "-log-level", 0, false, 0},
		{"unknown request level", []string{"-request-log", "yes"}, "-request-log", 0, false, 0},
		{"request log below the log level", []string{"-request-log", "debug"}, "below -log-level", 0, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			m := &Main{Getenv: func(string) string { return "" }, Stderr: io.Discard}
			err := m.ParseFlags(tc.args)
			if tc.wantErr != "" {
				is.True(err != nil)
				is.True(strings.Contains(err.Error(), tc.wantErr))
				return
			}
			is.NoErr(err)
			is.Equal(m.logLevel, tc.level)
			is.Equal(m.requestLogOn, tc.requestOn)
			is.Equal(m.requestLevel, tc.reqLevel)
		})
	}
	t.Run("environment", func(t *testing.T) {
		is := is.New(t)
		env := map[string]string{"LICENSING_LOG_FORMAT": "json", "LICENSING_LOG_LEVEL": "warn", "LICENSING_REQUEST_LOG": "error"}
		m := &Main{Getenv: func(k string) string { return env[k] }, Stderr: io.Discard}
		is.NoErr(m.ParseFlags(nil))
		is.Equal(m.LogFormat, "json")
		is.Equal(m.logLevel, slog.LevelWarn)
		is.Equal(m.requestLevel, slog.LevelError)
	})
}

// lockedBuilder is a strings.Builder safe for concurrent use.
type lockedBuilder struct {
	mu     sync.Mutex
	b      strings.Builder
	writes int
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestBufferedWriter(t *testing.T) {
	is := is.New(t)
	out := &lockedBuilder{}
	b := newBufferedWriter(out, 100, time.Hour) // only size, Flush and Close pass writes on
	b.Write([]byte("one\n"))
	is.Equal(out.String(), "") // held
	b.Write([]byte(strings.Repeat("x", 99) + "\n"))
	is.Equal(out.String(), "one\n")                  // the buffer was full: what it held went first
	b.Write([]byte(strings.Repeat("y", 200) + "\n")) // larger than the buffer: straight through, after the rest
	is.Equal(out.String(), "one\n"+strings.Repeat("x", 99)+"\n"+strings.Repeat("y", 200)+"\n")
	b.Write([]byte("two\n"))
	is.NoErr(b.Flush())
	is.True(strings.HasSuffix(out.String(), "y\ntwo\n"))
	b.Write([]byte("three\n"))
	is.NoErr(b.Close())
	is.True(strings.HasSuffix(out.String(), "two\nthree\n")) // Close flushes
	b.Write([]byte("four\n"))
	is.True(strings.HasSuffix(out.String(), "three\nfour\n")) // after Close, at once

	// Concurrent writers: every line arrives whole, and the timer flushes.
	out2 := &lockedBuilder{}
	b2 := newBufferedWriter(out2, 1<<10, 5*time.Millisecond)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				b2.Write([]byte(strings.Repeat(string(rune('a'+g)), 20) + "\n"))
			}
		}(g)
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out2.String(), "\n") < 1600 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSuffix(out2.String(), "\n"), "\n")
	is.Equal(len(lines), 1600) // flushed by the timer, without Close
	for _, l := range lines {
		is.Equal(len(l), 20)
		is.Equal(strings.Count(l, l[:1]), 20) // not torn
	}
	is.NoErr(b2.Close())
}

// TestRequestLineMatchesSlog: the hand-appended request line parses as the
// line slog's handler of the same format writes, with the same fields.
func TestRequestLineMatchesSlog(t *testing.T) {
	paths := []string{"/api/v1/licensing/validate", "/api/v1/licensing/keys/[redacted]", "/with space", `/q"uote`,
		"/a=b", "/tab\there", "/é", "/日本", "/nbsp\u00a0", "/zwsp\u200b", "/bad\xffutf8", "/del\x7f", "", "/ctl\x01"}
	for _, format := range []string{"text", "json"} {
		for _, path := range paths {
			t.Run(format+" "+path, func(t *testing.T) {
				is := is.New(t)
				out := &lockedBuilder{}
				m := &Main{LogFormat: format, requestLevel: slog.LevelWarn}
				m.reqBuf = newBufferedWriter(out, 1<<10, time.Hour)
				at := time.Date(2026, 11, 26, 14, 9, 27, 6371733, time.UTC)
				m.writeRequestLine(at, "POST", path, 401, 1234*time.Microsecond)
				is.NoErr(m.reqBuf.Close())

				want := &lockedBuilder{}
				opts := &slog.HandlerOptions{ReplaceAttr: nil}
				var h slog.Handler = slog.NewTextHandler(want, opts)
				if format == "json" {
					h = slog.NewJSONHandler(want, opts)
				}
				r := slog.NewRecord(at, slog.LevelWarn, "request", 0)
				r.AddAttrs(slog.String("method", "POST"), slog.String("path", path), slog.Int("status", 401),
					slog.Duration("duration", 1234*time.Microsecond))
				is.NoErr(h.Handle(context.Background(), r))
				if format == "json" {
					var got, exp map[string]any
					is.NoErr(json.Unmarshal([]byte(out.String()), &got))
					is.NoErr(json.Unmarshal([]byte(want.String()), &exp))
					is.Equal(got, exp)
					return
				}
				is.Equal(out.String(), want.String())
			})
		}
	}
}

func TestAPIFirst(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	inner := http.NewServeMux()                              // like licensing.Handler, a ServeMux: it cleans paths, and answers every path
	inner.Handle("/api/v1/licensing/validate", named("api")) // exact patterns, as licensing.Handler registers
	inner.Handle("/api/v1/licensing/keys/{id}", named("api"))
	inner.Handle("/", named("api 404"))
	h := apiFirst(inner, named("mux"))
	cases := []struct {
		method, path string
		want         string
		status       int
	}{
		{"POST", "/api/v1/licensing/validate", "api", 200},
		{"GET", "/api/v1/licensing/keys/x", "api", 200},
		{"GET", "/healthz", "mux", 200},
		{"GET", "/api/v1/licensingX", "mux", 200},
		{"GET", "/api/v1/licensing", "api 404", 200}, // the API's JSON 404, not the mux's redirect
		{"CONNECT", "/api/v1/licensing/validate", "mux", 200},
		{"GET", "/api/v1/licensing/../../../healthz", "", http.StatusMovedPermanently}, // cleaned, not served as API
		{"GET", "/api/v1/licensing//validate", "", http.StatusMovedPermanently},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			is := is.New(t)
			r := httptest.NewRequest(tc.method, "http://x/", nil)
			r.URL.Path = tc.path
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if tc.status == http.StatusMovedPermanently {
				is.True(w.Code >= 300 && w.Code < 400) // a redirect to the clean path, as a ServeMux answers
			} else {
				is.Equal(w.Code, tc.status)
			}
			if tc.want != "" {
				is.Equal(w.Body.String(), tc.want)
			}
		})
	}
}

// gatedWriter blocks its first Write until gate is closed.
type gatedWriter struct {
	entered, gate chan struct{}
	once          sync.Once
	out           lockedBuilder
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered); <-g.gate })
	return g.out.Write(p)
}

// TestBufferedWriterWritesOutsideTheLock: while a full buffer is written to
// a slow destination, other requests keep logging into the spare buffer;
// every writer's lines arrive in its order.
func TestBufferedWriterWritesOutsideTheLock(t *testing.T) {
	is := is.New(t)
	w := &gatedWriter{entered: make(chan struct{}), gate: make(chan struct{})}
	b := newBufferedWriter(w, 100, time.Hour)
	b.Write([]byte(strings.Repeat("a", 90) + "\n"))
	bDone := make(chan struct{})
	go func() {
		b.Write([]byte(strings.Repeat("b", 20) + "\n")) // fills: writes the a's, and stalls there
		close(bDone)
	}()
	<-w.entered
	done := make(chan struct{})
	go func() {
		b.Write([]byte("c\n")) // while the a's are being written
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a Write waited for a slow destination")
	}
	close(w.gate)
	<-bDone // its line is in the buffer now
	is.NoErr(b.Close())
	// the b's Write was still flushing the a's when c's completed
	is.Equal(w.out.String(), strings.Repeat("a", 90)+"\nc\n"+strings.Repeat("b", 20)+"\n")

	// many writers, many flushes: each writer's lines in its order
	out := &lockedBuilder{}
	b2 := newBufferedWriter(out, 256, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fmt.Fprintf(b2, "%d %04d\n", g, i)
			}
		}()
	}
	wg.Wait()
	is.NoErr(b2.Close())
	next := map[string]int{}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	is.Equal(len(lines), 4000)
	for _, l := range lines {
		var g string
		var i int
		_, err := fmt.Sscanf(l, "%s %d", &g, &i)
		is.NoErr(err)
		is.Equal(i, next[g]) // in order
		next[g]++
	}
}

type yieldWriter struct {
	mu  sync.Mutex
	out bytes.Buffer
}

func (w *yieldWriter) Write(p []byte) (int, error) {
	runtime.Gosched() // a slow destination: others log meanwhile
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}

// What held: many writers, buffers smaller than some lines, a 1 ms timer,
// Flush and Close while writing: every line arrives once, whole, and in
// each writer's order (run with -race).
func TestBufferedWriterStress(t *testing.T) {
	for _, max := range []int{1, 17, 64, 300} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			is := is.New(t)
			w := &yieldWriter{}
			b := newBufferedWriter(w, max, time.Millisecond)
			const writers, lines = 12, 400
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := range lines {
						pad := strings.Repeat("x", (i*7+g)%90)
						fmt.Fprintf(b, "w%d %d %s\n", g, i, pad)
						if i%97 == 0 {
							b.Flush()
						}
						if g == 0 && i == lines/2 {
							b.Close() // the rest go through at once
						}
					}
				})
			}
			wg.Wait()
			b.Close()
			next := make([]int, writers)
			for _, l := range strings.Split(strings.TrimSuffix(w.out.String(), "\n"), "\n") {
				var g, i int
				var pad string
				n, _ := fmt.Sscanf(l, "w%d %d %s", &g, &i, &pad)
				is.True(n >= 2)                // a whole line
				is.Equal(i, next[g])           // once, in the writer's order
				is.Equal(len(pad), (i*7+g)%90) // not torn
				next[g]++
			}
			for g := range writers {
				is.Equal(next[g], lines) // none lost
			}
		})
	}
}

type failOnce struct {
	yieldWriter
	fail bool
}

func (w *failOnce) Write(p []byte) (int, error) {
	if w.fail {
		w.fail = false
		return 0, errors.New("EAGAIN")
	}
	return w.yieldWriter.Write(p)
}

// Promise (bufferedWriter): "each Write reaches w whole and in order". When
// the flush a Write triggers fails once (a transient error of the
// destination), that Write's own line, never handed to the destination, is
// dropped too: Write returns (0, err), which slog ignores; the next
// successful write does not carry it. Root cause:
// internal/server/logging.go Write, `return 0, err` after flushUnlock
// instead of buffering p.
func TestBufferedWriterTransientError(t *testing.T) {
	is := is.New(t)
	w := &failOnce{}
	b := newBufferedWriter(w, 10, time.Hour)
	b.Write([]byte("aaaaaaaa\n"))
	w.fail = true
	b.Write([]byte("bbbbbbbb\n")) // its flush of the a line fails
	b.Write([]byte("cccccccc\n"))
	is.NoErr(b.Close())
	t.Logf("destination got %q", w.out.String())
	is.True(strings.Contains(w.out.String(), "bbbbbbbb")) // never offered to the destination, yet lost
}
