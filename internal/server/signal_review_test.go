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

// Review (review5): with -shutdown-delay the server drains for that long
// after SIGTERM. A second SIGTERM or a Ctrl-C (SIGINT) during the drain is
// swallowed: signal.NotifyContext in internal/server/server.go Main keeps
// catching both until Main returns, and drain() is a bare time.Sleep. The
// only way out of a long drain is SIGKILL, which skips the graceful part
// (pending validation records are not flushed, the store is not closed).
// Expected: a second signal ends the drain and shuts down gracefully now.
func TestReviewSecondSignalEndsDrain(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	stderr := &syncBuffer{}
	cmd := exec.Command(serverBin, "-data", data, "-addr", "127.0.0.1:0", "-shutdown-delay", "1h")
	cmd.Stderr = stderr
	is.NoErr(cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	// stderr is written by the exec package's copier; poll until the drain began
	for i := 0; ; i++ {
		time.Sleep(50 * time.Millisecond)
		if i%10 == 0 && i > 0 {
			cmd.Process.Signal(syscall.SIGTERM) // again, once listening
		}
		if strings.Contains(stderr.String(), "draining") {
			break
		}
		if i > 400 {
			t.Fatal("never drained")
		}
	}
	cmd.Process.Signal(syscall.SIGINT) // the operator presses Ctrl-C: stop now
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second): // against a drain of an hour
		t.Fatal("a second SIGTERM and a SIGINT did not end a 1h drain within 30s")
	}
}
