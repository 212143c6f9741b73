package browsertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/licensekit/licensing/internal/harness"

	// The test runs the binary that go build makes, but go test's cache
	// only sees this module's files: importing the server's package ties
	// the test binary, and so the cached result, to the server's code and
	// the page's embedded files.
	_ "github.com/licensekit/licensing/internal/server"
)

// repoRoot is the root module's directory, the parent of this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := harness.Root()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestMain(m *testing.M) {
	code := m.Run()
	harness.RemoveBuilds()
	os.Exit(code)
}

// server is one running reference server.
type server struct {
	URL   string
	Token string // the owner token of its demo organization
	logs  *harness.Buffer
}

var tokenLine = regexp.MustCompile(`^owner token: (\S+)$`)

// startServer runs the server binary on a free port with a fresh data
// directory and an RSA key for RS256 tokens, and stops it when the test
// ends. With config "" it runs the demo organization of a first start and
// reads the owner token that start prints; else config is the server's
// configuration file and token the owner token it configures.
func startServer(t *testing.T, config, token string) *server {
	t.Helper()
	bin := harness.BuildTB(t, harness.ServerCmd)
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
	s := &server{Token: token}
	p := harness.StartTB(t, exec.Command(bin, args...), harness.Config{Line: func(line string) string {
		if m := tokenLine.FindStringSubmatch(line); m != nil {
			s.Token = m[1] // printed before the listen line, so read before StartTB returns
			return "owner token: <redacted>"
		}
		return line
	}})
	s.URL, s.logs = p.URL, p.Log
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
