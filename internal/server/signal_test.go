package server_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestSecondSignalEndsDrain: with -shutdown-delay the server drains for
// that long after SIGTERM; a second SIGTERM or a Ctrl-C (SIGINT) ends the
// drain and the server shuts down gracefully at once, instead of needing a
// SIGKILL that would skip flushing and closing the store.
func TestSecondSignalEndsDrain(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	stderr := &syncBuffer{}
	cmd := exec.Command(serverBin, "-data", data, "-addr", "127.0.0.1:0", "-shutdown-delay", "1h")
	cmd.Stderr = stderr
	is.NoErr(cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	// stderr is written by the exec package's copier: poll until the server
	// listens (a first start makes an RSA key, which takes a while on a
	// busy machine), then SIGTERM and poll until the drain began
	deadline := time.Now().Add(60 * time.Second)
	for !listening.MatchString(stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("never listened:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
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
