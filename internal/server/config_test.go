package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestConfigErrorsNameTheirPlace: a configuration the server cannot use
// stops the start with one error that says where the mistake is (line and
// column for JSON that does not parse, the entry for a meaning that does
// not hold) and what to do.
func TestConfigErrorsNameTheirPlace(t *testing.T) {
	plans := `"plans": {"business": {}},`
	tests := []struct {
		name, config string
		want         []string
	}{
		{"missing comma", "{\n  \"issuer\": \"i\"\n  \"plans\": {}\n}", []string{":3:3: ", "invalid character"}},
		{"trailing comma", "{\n  \"plans\": {\"a\": {},}\n}", []string{":2:21: "}},
		{"wrong type", "{\n\n  \"organizations\": [{\"id\": 5}]}", []string{":3:", "organizations.id", "wrong type"}},
		{"cut short", "{\n  \"plans\": {\n", []string{":3:1: ", "ends early"}},
		{"owner without a token", `{` + plans + `"organizations": [{"id": "org-1", "ownerId": "alice", "plan": "business"}]}`,
			[]string{`organizations[0].ownerId`, `"alice"`, `"org-1"`, "has no token", `"userId": "alice"`, "to tokens"}},
		{"token without an organization", `{` + plans + `"organizations": [{"id": "org-1", "ownerId": "alice", "plan": "business"}],
			"tokens": [{"sha256": "` + sha("a") + `", "userId": "alice"}, {"sha256": "` + sha("b") + `", "userId": "bob"}]}`,
			[]string{"tokens[1].userId", `"bob"`, "no organization", "ownerId", "members", "remove the token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "c.json")
			is.NoErr(os.WriteFile(cfg, []byte(tc.config), 0o600))
			out, err := exec.Command(serverBin, "-addr", "127.0.0.1:0", "-config", cfg, "-data", filepath.Join(dir, "d")).CombinedOutput()
			is.True(err != nil) // the server does not start
			last := strings.TrimSpace(string(out))
			last = last[strings.LastIndexByte(last, '\n')+1:]
			is.True(strings.Contains(last, cfg)) // names the file
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Fatalf("%q is not in the error:\n%s", w, last)
				}
			}
		})
	}
}

// TestReloadAppliesARemovedOwnerToken: a start refuses an owner without a
// token, but a reload that removes one applies it, with a warning, since
// removing a leaked token is how an operator cuts it off: refusing the
// reload would keep serving it.
func TestReloadAppliesARemovedOwnerToken(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	p := start(t, nil, "-config", cfgPath, "-data", filepath.Join(dir, "data"))
	status, _, _ := p.do(t, "GET", "/api/v1/licensing/keys", "token-owner-3", "")
	is.Equal(status, 200)

	full, err := os.ReadFile(cfgPath)
	is.NoErr(err)
	token3 := `,
             {"sha256": "` + sha("token-owner-3") + `", "userId": "user-3"}`
	is.True(strings.Contains(string(full), token3))
	is.NoErr(os.WriteFile(cfgPath, []byte(strings.Replace(string(full), token3, "", 1)), 0o600))
	is.NoErr(p.cmd.Process.Signal(syscall.SIGHUP))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logs.String(), "configuration reloaded") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	is.True(strings.Contains(p.logs.String(), "configuration reloaded"))
	is.True(strings.Contains(p.logs.String(), "a start would refuse it"))
	is.True(strings.Contains(p.logs.String(), `organizations[1].ownerId: owner \"user-3\"`)) // the warning names the entry
	status, _, _ = p.do(t, "GET", "/api/v1/licensing/keys", "token-owner-3", "")
	is.Equal(status, 401) // the removed token is cut off
	status, _, _ = p.do(t, "GET", "/api/v1/licensing/keys", "token-owner-1", "")
	is.Equal(status, 200)

	out, err := exec.Command(serverBin, "-addr", "127.0.0.1:0", "-config", cfgPath, "-data", filepath.Join(dir, "other")).CombinedOutput()
	is.True(err != nil) // while a start refuses the same file
	is.True(strings.Contains(string(out), "organizations[1].ownerId"))
}
