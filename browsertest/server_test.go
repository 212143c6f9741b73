package browsertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	// The test runs the binary that go build makes, but go test's cache
	// only sees this module's files: importing the server's package ties
	// the test binary, and so the cached result, to the server's code and
	// the page's embedded files.
	_ "github.com/licensekit/licensing/internal/server"
)

var (
	buildOnce sync.Once
	serverBin string
	buildErr  error
)

// repoRoot is the root module's directory, the parent of this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.Contains(b, []byte("module github.com/licensekit/licensing\n")) {
		t.Fatalf("%s is not the root of github.com/licensekit/licensing: %v", root, err)
	}
	return root
}

// buildServer builds the real reference server once per test binary, from
// the root module, so that this module need not require it.
func buildServer(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "licensing-browsertest")
		if err != nil {
			buildErr = err
			return
		}
		serverBin = filepath.Join(dir, "licensing-server")
		cmd := exec.Command("go", "build", "-o", serverBin, "github.com/licensekit/licensing/cmd/licensing-server")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build licensing-server: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return serverBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if serverBin != "" {
		os.RemoveAll(filepath.Dir(serverBin))
	}
	os.Exit(code)
}

// server is one running reference server.
type server struct {
	URL   string
	Token string // the owner token of its demo organization
	logs  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteLine(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
	l.b.WriteByte('\n')
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)
	tokenLine     = regexp.MustCompile(`^owner token: (\S+)$`)
)

// startServer runs the server binary on a free port with a fresh data
// directory and an RSA key for RS256 tokens, and stops it when the test
// ends. With config "" it runs the demo organization of a first start and
// reads the owner token that start prints; else config is the server's
// configuration file and token the owner token it configures.
func startServer(t *testing.T, config, token string) *server {
	t.Helper()
	bin := buildServer(t)
	data := t.TempDir()
	args := []string{"-addr", "127.0.0.1:0", "-data", data, "-rsa-signing-key", filepath.Join(data, "signing-rsa.pem"),
		"-owner-rate-limit", "0"} // the test clicks faster than an owner; the page's 429 text has a test of its own
	if config != "" {
		path := filepath.Join(data, "config.json")
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-config", path)
	}
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{logs: &lockedBuffer{}, Token: token}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := tokenLine.FindStringSubmatch(line); m != nil {
				s.Token = m[1]
				line = "owner token: <redacted>"
			}
			s.logs.WriteLine(line)
			if m := listeningLine.FindStringSubmatch(line); m != nil && s.URL == "" {
				s.URL = "http://" + m[1]
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("server exited before listening: %v\n%s", err, s.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start listening\n%s", s.logs.String())
	}
	if s.Token == "" {
		t.Fatalf("the first start printed no owner token\n%s", s.logs.String())
	}
	return s
}

// api sends one JSON request to the server, as the owner when owner is set,
// and decodes the answer into out when out is not nil; it returns the status.
func (s *server) api(t *testing.T, method, path string, owner bool, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+"/api/v1/licensing"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if owner {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode
}
