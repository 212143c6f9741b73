package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// hookSecret is a webhook endpoint's secret (32 bytes).
const hookSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

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
		{"webhook URL not http", `{"webhooks": [{"url": "ftp://crm.example.com/hooks", "secret": "` + hookSecret + `"}]}`,
			[]string{"webhooks[0].url", "http or https URL", "https://crm.example.com/hooks/licensing"}},
		{"webhook URL missing", `{"webhooks": [{"secret": "` + hookSecret + `"}]}`, []string{"webhooks[0].url", "required"}},
		{"webhook URL twice", `{"webhooks": [{"url": "https://a.example/h", "secret": "` + hookSecret + `"}, {"url": "https://a.example/h", "secret": "` + hookSecret + `"}]}`,
			[]string{"webhooks[1].url", "webhooks[0]", "list each endpoint once"}},
		{"webhook secret without prefix", `{"webhooks": [{"url": "https://a.example/h", "secret": "` + hookSecret[len("whsec_"):] + `"}]}`,
			[]string{"webhooks[0].secret", `"whsec_"`, "head -c 32 /dev/urandom | base64"}},
		{"webhook secret short", `{"webhooks": [{"url": "https://a.example/h", "secret": "whsec_c2hvcnQ="}]}`,
			[]string{"webhooks[0].secret", "5 bytes", "24 to 64 bytes"}},
		{"webhook event unknown", `{"webhooks": [{"url": "https://a.example/h", "secret": "` + hookSecret + `", "events": ["key.created", "key.deleted"]}]}`,
			[]string{"webhooks[0].events[1]", `"key.deleted"`, "key.revoked", "leave events out"}},
		{"webhook event never logged", `{"webhooks": [{"url": "https://a.example/h", "secret": "` + hookSecret + `", "events": ["key.validated"]}]}`,
			[]string{"webhooks[0].events[0]", `"key.validated"`, "key.revoked", "leave events out"}}, // successes never reach the log: nothing would come
		{"webhook delivery duration", `{"webhookDelivery": {"firstRetry": "5 seconds"}}`,
			[]string{"webhookDelivery.firstRetry", `"5 seconds"`, `"10s"`}},
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
			is.True(strings.Contains(last, cfg))                    // names the file
			is.True(!strings.Contains(string(out), hookSecret[6:])) // never shows a webhook secret
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

// fieldNamed matches an error that names what is wrong in the file: a
// top-level field, an indexed field path, or the unknown field.
var fieldNamed = regexp.MustCompile(`(^|[ :])(issuer|billingUrl|requiredFeature|plans(\.[^:]*)?|organizations(\[\d+\])?\.\w+|tokens\[\d+\]\.\w+|limits|webhooks(\[\d+\]\.\w+(\[\d+\])?)?|webhookDelivery\.\w+|field [\w.]+: wrong type)(:|$| )|unknown field "`)

// FuzzLoadConfig: LoadConfig never panics; an accepted file is accepted
// again after a JSON round trip of what it read; an error names the file,
// and, unless the file is not JSON at all, the field.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		`{"issuer":"i","billingUrl":"https://b.example","requiredFeature":"selfHostingLicense",
		  "plans":{"business":{"selfHostingLicense":true,"maxCompanies":10}},
		  "organizations":[{"id":"o","name":"O","ownerId":"u","members":["m"],"plan":"business","active":true,
		    "currentPeriodEnd":"2027-03-20T00:00:00+00:00","trialEndsAt":null}],
		  "tokens":[{"sha256":"` + strings.Repeat("ab", 32) + `","userId":"u"}],
		  "limits":{"companyCount":"maxCompanies"}}`,
		`{"plans":{"a":{}},"organizations":[{"id":"o","ownerId":"u","plan":"b","active":true}]}`,
		`{"plans":{"a":{"f":"x"}}}`,
		`{"organizations":[{"id":5}]}`,
		`{"tokens":[{"sha256":"zz","userId":"u"}]}`,
		`{"tokens":[{"sha256":"` + strings.Repeat("ab", 34) + `","userId":"u"}]}`,
		`{"organisations":[]}`,
		`{"limits":{"":"x"}}`,
		`{"webhooks":[{"url":"https://a.example/h","secret":"` + hookSecret + `","events":["key.created"]}],"webhookDelivery":{"timeout":"2s","maxAttempts":3}}`,
		`{"webhooks":[{"url":"http://a.example/h","secret":"whsec_"}]}`,
		`{"webhooks":[{"url":"https://a.example/h","secret":"` + hookSecret + `","events":["x"]}]}`,
		`{"webhookDelivery":{"maxAttempts":-1}}`,
		`{"plans":{"a":{"f":1e400}}}`,
		`{"organizations":[{"id":"o","ownerId":"u","plan":"a"},{"id":"o","ownerId":"u","plan":"a"}],"plans":{"a":{}}}`,
		`{`, ``, `null`, `[]`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := server.LoadConfig(path)
		if err != nil {
			msg := err.Error()
			where := regexp.MustCompile(`^config ` + regexp.QuoteMeta(path) + `(:\d+:\d+)?: `).FindString(msg)
			if where == "" {
				t.Fatalf("error does not name the file: %v", err)
			}
			msg = "config " + path + ": " + strings.TrimPrefix(msg, where)
			var syntax *json.SyntaxError
			notJSON := errors.As(err, &syntax) || strings.HasSuffix(msg, ": EOF") || errors.Is(err, io.ErrUnexpectedEOF)
			documentType := strings.Contains(msg, "must hold one JSON object") || strings.Contains(msg, "data after the configuration object")
			if !notJSON && !documentType && !fieldNamed.MatchString(strings.TrimPrefix(msg, "config "+path+": ")) {
				t.Fatalf("error names no field: %v", err)
			}
			return
		}
		if c == nil {
			t.Fatal("nil config without an error")
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal accepted config: %v", err)
		}
		path2 := filepath.Join(t.TempDir(), "again.json")
		if err := os.WriteFile(path2, again, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := server.LoadConfig(path2); err != nil {
			t.Fatalf("accepted %q, but not what it read back, %s: %v", data, again, err)
		}
	})
}

// TestLoadConfigWholeDocument: a file that is not one JSON object is
// refused, naming the file: null, an array, and an object followed by more
// (a half-saved edit) are not configurations.
func TestLoadConfigWholeDocument(t *testing.T) {
	for _, doc := range []string{`null`, `[]`, `{} {"issuer":5}`, `{"issuer":"a"} x`, `"x"`} {
		t.Run(doc, func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "config.json")
			is.NoErr(os.WriteFile(path, []byte(doc), 0o600))
			_, err := server.LoadConfig(path)
			is.True(err != nil) // refused
			if err != nil {
				is.True(strings.Contains(err.Error(), path))             // names the file
				is.True(!strings.Contains(err.Error(), "field : wrong")) // and says what is wrong in words
			}
		})
	}
}
