package server_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestDataDirNotOwnedStillStarts: a data directory the server may write but
// does not own (a volume owned by root, 0777 or group-writable with fsGroup,
// as Kubernetes and Docker make them) cannot be made 0700; the server starts
// on it all the same, with a warning saying so.
func TestDataDirNotOwnedStillStarts(t *testing.T) {
	is := is.New(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the server as another user")
	}
	base, err := os.MkdirTemp("", "r6vol")
	is.NoErr(err)
	defer os.RemoveAll(base)
	is.NoErr(os.Chmod(base, 0o755))
	data := filepath.Join(base, "data")
	is.NoErr(os.Mkdir(data, 0o777))
	is.NoErr(os.Chmod(data, 0o777)) // owned by root, writable by the server's user
	bin := filepath.Join(base, "licensing-server")
	b, err := os.ReadFile(serverBin)
	is.NoErr(err)
	is.NoErr(os.WriteFile(bin, b, 0o755))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-data", data, "-addr", "127.0.0.1:0", "-store", "file", "-rate-limit", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	t.Logf("stderr: %s", stderr.String())
	// Killed by the context (still serving) is what a start looks like.
	is.True(!strings.Contains(stderr.String(), "must be private"))       // the server refused a directory it can write
	is.True(ctx.Err() != nil)                                            // it was still running after 3 s
	is.True(strings.Contains(stderr.String(), "cannot be made private")) // and said why the directory stays open
	_ = err
}
