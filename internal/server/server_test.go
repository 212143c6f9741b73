package server_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/harness"
	"github.com/matryer/is"
)

var serverBin string

func TestMain(m *testing.M) {
	bin, err := harness.Build(harness.ServerCmd)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = bin
	code := m.Run()
	harness.RemoveBuilds()
	os.Exit(code)
}

// proc is one running server binary.
type proc struct {
	h    *harness.Process
	cmd  *exec.Cmd
	url  string
	logs *harness.Buffer // its stderr
}

func newProc(h *harness.Process) *proc {
	return &proc{h: h, cmd: h.Cmd, url: h.URL, logs: h.Log}
}

// serverCmd is the server binary with args on a free port, env added to
// the test's environment.
func serverCmd(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(serverBin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// start runs the server binary with args and waits until it listens.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return newProc(harness.StartTB(t, serverCmd(env, args...), harness.Config{}))
}

// stop stops the server (SIGTERM) and fails the test if it had to be killed.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	harness.StopTB(t, p.h)
}

func (p *proc) do(t *testing.T, method, path, token, body string, hdr ...string) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return res.StatusCode, m, string(raw)
}

// needTool returns the path of an outside program a test runs. When it is
// not installed the test is skipped, saying which Debian package has it;
// under CI=true (.ci/run installs every one) the test fails instead.
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed: CI is set, and .ci/run installs it (apt-get install %s)", name, debianPackage)
	}
	t.Skipf("%s is not installed (apt-get install %s): skipping this test", name, debianPackage)
	return ""
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func writeConfig(t *testing.T, path, org1Plan string) {
	t.Helper()
	cfg := fmt.Sprintf(`{
  "issuer": "licensing.example.com",
  "billingUrl": "https://app.example.com/settings/billing",
  "requiredFeature": "selfHostingLicense",
  "plans": {"business": {"selfHostingLicense": true, "maxCompanies": 0},
            "enterprise": {"selfHostingLicense": true, "maxCompanies": 100, "sso": true},
            "starter": {"selfHostingLicense": false, "maxCompanies": 3}},
  "organizations": [
    {"id": "org-1", "name": "Acme SRL", "ownerId": "user-1", "members": ["user-2"], "plan": %q,
     "active": true, "currentPeriodEnd": "2027-03-20T00:00:00+00:00", "trialEndsAt": null},
    {"id": "org-2", "name": "Other SRL", "ownerId": "user-3", "plan": "business", "active": true}
  ],
  "tokens": [{"sha256": %q, "userId": "user-1"}, {"sha256": %q, "userId": "user-2"},
             {"sha256": %q, "userId": "user-3"}]
}`, org1Plan, sha("token-owner-1"), sha("token-member-2"), sha("token-owner-3"))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEndToEnd(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	p := start(t, nil, "-config", cfgPath, "-data", filepath.Join(dir, "data"), "-request-log", "info")
	const owner, other = "token-owner-1", "token-owner-3"

	status, b1, _ := p.do(t, "POST", "/api/v1/licensing/keys", owner, `{"instanceName":"Production"}`)
	is.Equal(status, 201)
	time.Sleep(1100 * time.Millisecond) // createdAt has seconds precision; keep the order visible
	status, b2, _ := p.do(t, "POST", "/api/v1/licensing/keys", owner, `{"instanceName":"Staging"}`)
	is.Equal(status, 201)
	id1, key1 := b1["id"].(string), b1["licenseKey"].(string)
	id2, key2 := b2["id"].(string), b2["licenseKey"].(string)

	status, list, raw := p.do(t, "GET", "/api/v1/licensing/keys", owner, "")
	is.Equal(status, 200)
	keys := list["keys"].([]any)
	is.Equal(len(keys), 2)
	is.Equal(keys[0].(map[string]any)["id"], id2) // newest first
	is.Equal(keys[0].(map[string]any)["licenseKey"], key2[:8]+"..."+key2[56:])
	is.Equal(keys[1].(map[string]any)["licenseKey"], key1[:8]+"..."+key1[56:])
	is.True(!strings.Contains(raw, key1) && !strings.Contains(raw, key2))

	status, v, _ := p.do(t, "POST", "/api/v1/licensing/validate", "",
		`{"licenseKey":"`+key1+`","instanceName":"Prod EU","instanceUrl":"https://factura.example.ro","metrics":{"companyCount":2}}`)
	is.Equal(status, 200)
	is.Equal(v["plan"], "business")
	is.Equal(v["currentPeriodEnd"], "2027-03-20T00:00:00+00:00")
	is.Equal(v["billingUrl"], "https://app.example.com/settings/billing")

	_, list, _ = p.do(t, "GET", "/api/v1/licensing/keys", owner, "")
	k1 := list["keys"].([]any)[1].(map[string]any)
	is.Equal(k1["id"], id1)
	is.True(k1["activatedAt"] != nil)
	is.True(k1["lastValidatedAt"] != nil)
	is.Equal(k1["instanceUrl"], "https://factura.example.ro")
	is.Equal(k1["instanceName"], "Prod EU")

	writeConfig(t, cfgPath, "enterprise")
	is.NoErr(p.cmd.Process.Signal(syscall.SIGHUP))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.logs.String(), "configuration reloaded") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	status, v, _ = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key1+`"}`)
	is.Equal(status, 200)
	is.Equal(v["plan"], "enterprise") // the new plan on the next validation
	is.Equal(v["features"].(map[string]any)["sso"], true)
	is.Equal(v["features"].(map[string]any)["maxCompanies"], 100.0)
	_, list, _ = p.do(t, "GET", "/api/v1/licensing/keys", owner, "")
	is.Equal(len(list["keys"].([]any)), 2) // the reload dropped no key

	status, _, _ = p.do(t, "DELETE", "/api/v1/licensing/keys/"+id1, owner, "")
	is.Equal(status, 200)
	status, _, raw = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key1+`"}`)
	is.Equal(status, 401)
	is.Equal(raw, `{"valid":false,"error":"Invalid or revoked license key"}`+"\n")
	status, _, _ = p.do(t, "DELETE", "/api/v1/licensing/keys/"+id1, owner, "")
	is.Equal(status, 200) // revoking again is fine
	status, _, _ = p.do(t, "DELETE", "/api/v1/licensing/keys/"+id2, other, "")
	is.Equal(status, 404) // another organization's owner
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key2+`"}`)
	is.Equal(status, 200) // the other key is untouched

	status, _, _ = p.do(t, "POST", "/api/v1/licensing/keys", "token-member-2", `{}`)
	is.Equal(status, 403) // member, not owner
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/keys", owner, `{}`, "X-Organization", "org-2")
	is.Equal(status, 404) // not a member of org-2

	p.stop(t)
	logs := p.logs.String()
	for _, secret := range []string{key1, key2, key1[8:56], key2[8:56], owner, other, "token-member-2"} {
		is.True(!strings.Contains(logs, secret)) // no key or token in the log
	}
	is.True(strings.Contains(logs, "masked_key="+key1[:8]+"..."+key1[56:])) // events log masked keys
	is.True(strings.Contains(logs, "type=key.revoked"))
	is.True(strings.Contains(logs, "path=/api/v1/licensing/keys status=201")) // one line per request
}

func TestDemoBootstrap(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	p := start(t, nil, "-data", data)
	token := ""
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "owner token: "); ok {
			token = rest
		}
	}
	is.True(token != "") // the first start prints the owner token
	status, body, _ := p.do(t, "POST", "/api/v1/licensing/keys", token, `{"instanceName":"demo"}`)
	is.Equal(status, 201)
	key := body["licenseKey"].(string)
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 200)
	p.stop(t)
	is.Equal(strings.Count(p.logs.String(), token), 1) // printed once, logged never
	is.True(!strings.Contains(p.logs.String(), key))

	for _, name := range []string{"pepper", "demo.json", "signing-ed25519.pem"} {
		fi, err := os.Stat(filepath.Join(data, name))
		is.NoErr(err)
		is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // secrets are private
	}
	fi, err := os.Stat(data)
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o700))

	p2 := start(t, nil, "-data", data)
	is.True(!strings.Contains(p2.logs.String(), "owner token")) // later starts print nothing
	status, _, _ = p2.do(t, "GET", "/api/v1/licensing/keys", token, "")
	is.Equal(status, 200) // and reuse the owner
}

func TestInvalidConfigStopsStart(t *testing.T) {
	tests := []struct{ name, config, want string }{
		{"unknown plan", `{"plans":{"a":{}},"organizations":[{"id":"o","ownerId":"u","plan":"b","active":true}]}`, "organizations[0].plan"},
		{"bad time", `{"plans":{"a":{}},"organizations":[{"id":"o","ownerId":"u","plan":"a","currentPeriodEnd":"tomorrow"}]}`, "organizations[0].currentPeriodEnd"},
		{"bad token", `{"tokens":[{"sha256":"abc","userId":"u"}]}`, "tokens[0].sha256"},
		{"token digest one byte long", `{"tokens":[{"sha256":"` + strings.Repeat("ab", 33) + `","userId":"u"}]}`, "tokens[0].sha256"},
		{"token digest 68 hex", `{"tokens":[{"sha256":"` + strings.Repeat("ab", 34) + `","userId":"u"}]}`, "tokens[0].sha256"},
		{"token digest odd length", `{"tokens":[{"sha256":"` + strings.Repeat("a", 65) + `","userId":"u"}]}`, "tokens[0].sha256"},
		{"token digest not hex", `{"tokens":[{"sha256":"` + strings.Repeat("zz", 32) + `","userId":"u"}]}`, "tokens[0].sha256"},
		{"unknown field", `{"organisations":[]}`, `"organisations"`},
		{"wrong type", `{"organizations":[{"id":5}]}`, "organizations.id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "c.json")
			is.NoErr(os.WriteFile(cfg, []byte(tc.config), 0o600))
			out, err := exec.Command(serverBin, "-addr", "127.0.0.1:0", "-config", cfg, "-data", filepath.Join(dir, "d")).CombinedOutput()
			is.True(err != nil)                             // exits non-zero
			is.True(strings.Contains(string(out), tc.want)) // naming the field
		})
	}
}

func TestReloadWithInvalidConfigKeepsOld(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	p := start(t, nil, "-config", cfgPath, "-data", filepath.Join(dir, "data"))
	is.NoErr(os.WriteFile(cfgPath, []byte(`{"organizations": [`), 0o600))
	is.NoErr(p.cmd.Process.Signal(syscall.SIGHUP))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.logs.String(), "reload failed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	is.True(strings.Contains(p.logs.String(), "keeping the previous configuration"))
	status, _, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	is.Equal(status, 201) // still served from the old configuration
}

func TestPepperFromEnvironment(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cmd := exec.Command(serverBin, "-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "x"))
	cmd.Env = append(os.Environ(), "LICENSING_PEPPER=abcd")
	out, err := cmd.CombinedOutput()
	is.True(err != nil) // a short pepper is refused
	is.True(strings.Contains(string(out), "LICENSING_PEPPER"))
}

// The owner page is at /; every other unknown path stays a 404, and the
// API and /healthz still answer as before.
func TestOwnerPageRoutes(t *testing.T) {
	p := start(t, nil, "-data", filepath.Join(t.TempDir(), "data"), "-store", "memory")
	tests := []struct {
		method, path string
		status       int
		contentType  string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8"},
		{"HEAD", "/", 200, "text/html; charset=utf-8"},
		{"GET", "/owner.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/owner.css", 200, "text/css; charset=utf-8"},
		{"GET", "/nope", 404, "text/plain; charset=utf-8"},
		{"GET", "/owner.js/x", 404, "text/plain; charset=utf-8"},
		{"POST", "/", 405, "text/plain; charset=utf-8"},
		{"GET", "/healthz", 200, "application/json"},
		{"GET", "/api/v1/licensing/keys", 401, "application/json"},
		{"GET", "/api/v1/licensing/nope", 404, "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			is := is.New(t)
			req, err := http.NewRequest(tc.method, p.url+tc.path, nil)
			is.NoErr(err)
			res, err := http.DefaultClient.Do(req)
			is.NoErr(err)
			res.Body.Close()
			is.Equal(res.StatusCode, tc.status)
			is.Equal(res.Header.Get("Content-Type"), tc.contentType)
			if !strings.HasPrefix(tc.path, "/api/") && tc.path != "/healthz" {
				is.True(strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")) // the page's policy
			}
		})
	}
}
