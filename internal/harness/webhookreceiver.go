package harness

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// WebhookReceiverDir holds the Node webhook receiver (receiver.js) and the
// npm package files that pin the standardwebhooks package it verifies
// deliveries with, relative to the repository's root.
const WebhookReceiverDir = "internal/harness/testdata/standardwebhooks"

// WebhookResult is what the Node receiver found of one delivery.
type WebhookResult struct {
	ID              string `json:"id"`    // its webhook-id
	Type            string `json:"type"`  // the body's type, when verified
	KeyID           string `json:"keyId"` // the body's keyId, when verified
	Verified        bool   `json:"verified"`
	Error           string `json:"error"`           // why it was not verified
	TamperedRefused bool   `json:"tamperedRefused"` // the body with one bit flipped was refused
	TamperedError   string `json:"tamperedError"`
	ReplayRefused   bool   `json:"replayRefused"` // the delivery verified ten minutes later was refused
	ReplayError     string `json:"replayError"`
}

// WebhookReceiver is a running Node receiver (receiver.js) that verifies
// every delivery with npm's standardwebhooks package and answers 204 (or
// 400 to one that does not verify, or 503 while it is down).
type WebhookReceiver struct {
	URL     string
	Cmd     *exec.Cmd
	Results chan WebhookResult // one per delivery; buffered (1<<16), in arrival order
	Stderr  *Buffer
	down    string
	exited  chan struct{}
}

var npmInstall struct {
	once sync.Once
	dir  string
	err  error
}

// installReceiver runs npm ci for the receiver once per process, in the
// builds' directory (RemoveBuilds deletes it): it needs npm and the
// registry, or npm's cache holding standardwebhooks.
func installReceiver() (string, error) {
	npmInstall.once.Do(func() {
		npmInstall.dir, npmInstall.err = func() (string, error) {
			root, err := Root()
			if err != nil {
				return "", err
			}
			work, err := workDir()
			if err != nil {
				return "", err
			}
			dir := filepath.Join(work, "standardwebhooks")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return "", err
			}
			for _, name := range []string{"package.json", "package-lock.json", "receiver.js"} {
				b, err := os.ReadFile(filepath.Join(root, WebhookReceiverDir, name))
				if err != nil {
					return "", fmt.Errorf("harness: %w", err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
					return "", err
				}
			}
			cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("harness: npm ci in a copy of %s (needs npm and the npm registry, or npm's cache): %v\n%s", WebhookReceiverDir, err, out)
			}
			return dir, nil
		}()
	})
	return npmInstall.dir, npmInstall.err
}

// StartWebhookReceiver installs (once) and starts the Node receiver with
// the endpoint's secret ("whsec_..."), on a loopback port. It answers each
// delivery delay after it reported it on Results.
func StartWebhookReceiver(secret string, delay time.Duration) (*WebhookReceiver, error) {
	dir, err := installReceiver()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "licensing-receiver-")
	if err != nil {
		return nil, err
	}
	r := &WebhookReceiver{Results: make(chan WebhookResult, 1<<16), Stderr: &Buffer{},
		down: filepath.Join(work, "down"), exited: make(chan struct{})}
	r.Cmd = exec.Command("node", "receiver.js")
	r.Cmd.Dir = dir
	r.Cmd.Env = append(os.Environ(), "WEBHOOK_SECRET="+secret, "WEBHOOK_DOWN="+r.down, "WEBHOOK_DELAY_MS="+strconv.FormatInt(delay.Milliseconds(), 10))
	r.Cmd.Stderr = r.Stderr
	out, err := r.Cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := r.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("harness: start node: %w", err)
	}
	listening := make(chan string, 1)
	go func() {
		defer close(r.exited)
		defer os.RemoveAll(work)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if port, ok := strings.CutPrefix(line, "listening "); ok {
				listening <- port
				continue
			}
			var res WebhookResult
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				r.Stderr.Write([]byte("unreadable line: " + line + "\n"))
				continue
			}
			r.Results <- res
		}
		io.Copy(io.Discard, out)
		r.Cmd.Wait()
	}()
	select {
	case port := <-listening:
		r.URL = "http://127.0.0.1:" + port + "/hooks/licensing"
		return r, nil
	case <-r.exited:
		return nil, fmt.Errorf("harness: the webhook receiver exited before it listened: %s", r.Stderr.String())
	case <-time.After(DefaultListenTimeout):
		r.Stop()
		return nil, errors.New("harness: the webhook receiver did not listen within a minute: " + r.Stderr.String())
	}
}

// SetDown makes the receiver answer every delivery 503 (down) or verify
// them again (up).
func (r *WebhookReceiver) SetDown(down bool) error {
	if down {
		return os.WriteFile(r.down, nil, 0o600)
	}
	return os.Remove(r.down)
}

// Stop ends the receiver and waits for it.
func (r *WebhookReceiver) Stop() {
	r.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(DefaultStopTimeout):
		r.Cmd.Process.Kill()
		<-r.exited
	}
}

// StartWebhookReceiverTB is StartWebhookReceiver for a test: it fails the
// test when the receiver does not start and stops it when the test ends.
func StartWebhookReceiverTB(t TB, secret string, delay time.Duration) *WebhookReceiver {
	t.Helper()
	r, err := StartWebhookReceiver(secret, delay)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("webhook receiver's stderr:\n%s", r.Stderr.String())
		}
	})
	return r
}
