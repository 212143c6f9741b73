package server_test

import (
	"bufio"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// TestInFlightRequestFinishesAfterDrain: with -shutdown-delay the server keeps serving
// with /readyz at 503, "then it shuts down gracefully": a request in flight
// when SIGTERM arrives (here: its headers sent, its body not yet) finishes.
func TestInFlightRequestFinishesAfterDrain(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "file", RateBurst: 1,
		TokenLifetime: time.Hour, ShutdownDelay: 2 * time.Second})
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	is.NoErr(err)
	defer conn.Close()
	_, err = conn.Write([]byte("POST /api/v1/licensing/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-owner-1\r\n" +
		"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"))
	is.NoErr(err)
	p.cancel() // SIGTERM
	for {
		res, err := p.client.Get(p.url + "/readyz")
		is.NoErr(err) // still serving while draining
		res.Body.Close()
		if res.StatusCode == 503 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // past the drain: Shutdown has begun
	_, err = conn.Write([]byte("{}"))
	is.NoErr(err)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	is.NoErr(err) // the request in flight is answered
	res.Body.Close()
	is.Equal(res.StatusCode, 201) // and the key is created
}

// TestSecondSignalEndsDrain: with -shutdown-delay the server drains for
// that long after SIGTERM; a second SIGTERM or a Ctrl-C (SIGINT) ends the
// drain and the server shuts down gracefully at once, instead of needing a
// SIGKILL that would skip flushing and closing the store.
func TestSecondSignalEndsDrain(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := start(t, nil, "-data", data, "-shutdown-delay", "1h")
	cmd, stderr, exited := p.cmd, p.logs, p.h.Exited()
	// SIGTERM, then poll the log until the drain began
	deadline := time.Now().Add(60 * time.Second)
	cmd.Process.Signal(syscall.SIGTERM)
	for !strings.Contains(stderr.String(), "draining") {
		if time.Now().After(deadline) {
			t.Fatalf("never drained:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT) // the operator presses Ctrl-C: stop now
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second): // against a drain of an hour
		t.Fatal("a second SIGTERM and a SIGINT did not end a 1h drain within 30s")
	}
}
