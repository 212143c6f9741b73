package server_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

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
