// Package harness builds and starts the reference server for the load
// harnesses (internal/cmd/loadgen, internal/cmd/listmem): separate processes
// on loopback, so that what they measure is the server, not the driver.
package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

// BuildServer builds cmd/licensing-server into dir and returns its path.
// It must run from the repository's root.
func BuildServer(dir string) (string, error) {
	bin := filepath.Join(dir, "licensing-server")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/licensing-server").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build (run from the repository root): %v\n%s", err, out)
	}
	return bin, nil
}

// listenLine matches the line a server prints once it listens: the
// reference server's (text or JSON log) and the floor server's.
var listenLine = regexp.MustCompile(`(?:msg=listening addr=|"msg":"listening","addr":"|floor listening on )([^\s"]+)`)

// Start starts cmd and returns "http://" and the address it listens on,
// once it says so on stderr (within 15 seconds; else it is stopped). Its
// stderr is read, and dropped, for as long as it runs.
func Start(cmd *exec.Cmd) (string, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				break // the rest (a request log) is dropped unread: the harness must not compete for the CPU
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		return "http://" + a, nil
	case <-time.After(15 * time.Second):
		Stop(cmd)
		return "", errors.New("did not start")
	}
}

// Stop asks the process to shut down (SIGTERM, so it flushes what it
// buffers and writes its profile), and kills it after 20 seconds.
func Stop(cmd *exec.Cmd) {
	if cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
