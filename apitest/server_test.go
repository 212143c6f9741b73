package apitest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/licensekit/licensing/internal/harness"
)

// The bearer tokens of the test configuration: the owner of every
// organization, and a member (not owner) of org-acme.
const (
	ownerToken  = "lk_apitest_owner_0123456789abcdef"
	memberToken = "lk_apitest_member_0123456789abcdef"
)

// orgConfig is one organization of the reference server's config file.
type orgConfig struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	OwnerID          string   `json:"ownerId"`
	Members          []string `json:"members,omitempty"`
	Plan             string   `json:"plan"`
	Active           bool     `json:"active"`
	CurrentPeriodEnd string   `json:"currentPeriodEnd,omitempty"`
}

// serverConfig is the reference server's config file. later is the
// configuration after the reload: org-closed deactivated and org-down
// downgraded to a plan without self-hosting, each after a key was made in it.
func serverConfig(later bool) []byte {
	tok := func(t, user string) map[string]string {
		sum := sha256.Sum256([]byte(t))
		return map[string]string{"sha256": hex.EncodeToString(sum[:]), "userId": user}
	}
	closedActive, downPlan := true, "business"
	if later {
		closedActive, downPlan = false, "free"
	}
	cfg := map[string]any{
		"issuer":          "licensing.localhost",
		"billingUrl":      "https://app.example.ro/settings/billing",
		"requiredFeature": "selfHostingLicense",
		"plans": map[string]any{
			"business": map[string]any{"selfHostingLicense": true, "maxCompanies": 10, "maxUsersPerOrg": 10},
			"free":     map[string]any{"selfHostingLicense": false},
		},
		"organizations": []orgConfig{
			{ID: "org-acme", Name: "SC Firma Mea SRL", OwnerID: "alice", Members: []string{"bob"}, Plan: "business",
				Active: true, CurrentPeriodEnd: "2027-03-20T00:00:00Z"},
			{ID: "org-closed", Name: "Closed SRL", OwnerID: "alice", Plan: "business", Active: closedActive},
			{ID: "org-down", Name: "Downgraded SRL", OwnerID: "alice", Plan: downPlan, Active: true},
			{ID: "org-free", Name: "Free SRL", OwnerID: "alice", Plan: "free", Active: true},
		},
		"tokens": []map[string]string{tok(ownerToken, "alice"), tok(memberToken, "bob")},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// server is one running licensing-server process.
type server struct {
	proc   *harness.Process
	cmd    *exec.Cmd
	url    string
	config string
	logs   *harness.Buffer
}

// hasFlag reports whether bin's usage lists the flag -name.
func hasFlag(bin, name string) bool {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	return regexp.MustCompile(`(?m)^\s*-` + regexp.QuoteMeta(name) + `\b`).Match(out)
}

// startServer runs bin with the test configuration, a memory store and args,
// and waits until it listens.
func startServer(bin, dir string, args ...string) (*server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &server{config: filepath.Join(dir, "config.json")}
	if err := os.WriteFile(s.config, serverConfig(false), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0", "-store", "memory",
		"-data", filepath.Join(dir, "data"), "-config", s.config}, args...)...)
	cmd.Env = append(os.Environ(), "LICENSING_PEPPER=")
	p, err := harness.Start(cmd, harness.Config{})
	if err != nil {
		return nil, err
	}
	s.proc, s.cmd, s.url, s.logs = p, p.Cmd, p.URL, p.Log
	return s, nil
}

// reload writes the later configuration and sends SIGHUP, then waits for the
// server to log that it reloaded.
func (s *server) reload() error {
	if err := os.WriteFile(s.config, serverConfig(true), 0o600); err != nil {
		return err
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	for i := 0; i < 500; i++ {
		if strings.Contains(s.logs.String(), "configuration reloaded") {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server did not reload:\n%s", s.logs.String())
}

// stop stops the server (SIGTERM, then SIGKILL if it does not exit).
func (s *server) stop() {
	if s == nil {
		return
	}
	s.proc.Stop()
}

// call sends one owner request with the owner token and decodes the answer.
func (s *server) call(method, path, org string, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+ownerToken)
	req.Header.Set("Content-Type", "application/json")
	if org != "" {
		req.Header.Set("X-Organization", org)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return res.StatusCode, m, nil
}

// createdKey is a key the test made: its id and full license key.
type createdKey struct{ id, key string }

// createKey makes a key in org ("" for the owner's default, org-acme).
func (s *server) createKey(org string) (createdKey, error) {
	return s.createKeyWith(org, `{"instanceName":"apitest"}`)
}

// createKeyWith makes a key in org with the create body given.
func (s *server) createKeyWith(org, body string) (createdKey, error) {
	status, m, err := s.call(http.MethodPost, "/api/v1/licensing/keys", org, body)
	if err != nil {
		return createdKey{}, err
	}
	id, _ := m["id"].(string)
	key, _ := m["licenseKey"].(string)
	if status != http.StatusCreated || id == "" || key == "" {
		return createdKey{}, fmt.Errorf("create key in %q: %d %v", org, status, m)
	}
	return createdKey{id, key}, nil
}

// validate validates key with the validate body's other fields, extra,
// and wants 200.
func (s *server) validate(key, extra string) error {
	status, m, err := s.call(http.MethodPost, "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`",`+extra+`}`)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("validate: %d %v", status, m)
	}
	return nil
}

// revokeKey revokes the key with id in the owner's default organization.
func (s *server) revokeKey(id string) error {
	status, m, err := s.call(http.MethodDelete, "/api/v1/licensing/keys/"+id, "", "")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("revoke key: %d %v", status, m)
	}
	return nil
}

// lifetimeCall sends an owner request to /api/v1/licensing/keys/ plus path
// (PATCH an expiry, POST a rotation) and wants status back.
func (s *server) lifetimeCall(method, path, body string, status int) error {
	got, m, err := s.call(method, "/api/v1/licensing/keys/"+path, "", body)
	if err != nil {
		return err
	}
	if got != status {
		return fmt.Errorf("%s %s: %d %v", method, path, got, m)
	}
	return nil
}
