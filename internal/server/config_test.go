package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
