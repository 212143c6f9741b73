package server_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestKeyNeverLeaks creates a key, then sends it in odd
// places (paths, queries, headers, bodies with junk, upper case, percent
// encoded, as instanceName/instanceId/instanceUrl/metric name) with the
// debug log and the request log on, and looks for the full key (any case)
// in the log, every file of the data directory, list answers, /metrics,
// /healthz and the owner page.
func TestKeyNeverLeaks(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	data := filepath.Join(dir, "data")
	p := start(t, nil, "-config", cfgPath, "-data", data, "-rate-limit", "0", "-owner-rate-limit", "0",
		"-log-level", "debug", "-request-log", "debug", "-log-format", "json")
	is := is.New(t)
	const owner = "token-owner-1"
	status, b, _ := p.do(t, "POST", "/api/v1/licensing/keys", owner, `{"instanceName":"leak"}`)
	is.Equal(status, 201)
	key := b["licenseKey"].(string)
	upper := strings.ToUpper(key)

	type req struct {
		method, path, body string
		hdr                []string
	}
	reqs := []req{
		{"GET", "/api/v1/licensing/keys/" + key, "", nil},
		{"DELETE", "/api/v1/licensing/keys/" + key, "", nil},
		{"POST", "/api/v1/licensing/keys/" + key + "/jwt", "", nil},
		{"GET", "/" + key, "", nil},
		{"GET", "/" + key[:31] + "/" + key[31:62] + "/" + key[62:], "", nil},
		{"GET", "/api/v1/licensing/validate?licenseKey=" + key, "", nil},
		{"GET", "/api/v1/licensing/revocations?org=" + key + "&nonce=" + key, "", nil},
		{"GET", "/api/v1/licensing/revocations?nonce=" + key, "", nil},
		{"GET", "/api/v1/licensing/keys?cursor=" + key, "", nil},
		{"GET", "/api/v1/licensing/keys?limit=" + key, "", nil},
		{"GET", "/?key=" + key, "", nil},
		{"GET", "/healthz?" + key, "", nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"  ` + key + `  "}`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + upper + `"}`, nil},
		{"POST", "/api/v1/licensing/validate", `junk{"licenseKey":"` + key + `"}junk`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key + `"`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":["` + key + `"]}`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key + key + `"}`, nil},
		{"POST", "/api/v1/licensing/validate", `{"` + key + `":1}`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key + "\xff" + `"}`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key[:32] + `","instanceName":"` + key[32:] + `"}`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + url.QueryEscape(key) + `"}`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key + `","metrics":{"` + key + `":"x"}}`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key + `","metrics":{"a":{"` + key + `":1}}}`, nil},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key + `","nonce":"` + key + "\x01" + `"}`, nil},
		{"POST", "/api/v1/licensing/validate", "licenseKey=" + key, []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key + `"}` + strings.Repeat(" ", 70000), nil},
		{"POST", "/api/v1/licensing/keys", `{"instanceName":"` + key + "\x00" + `"}`, nil},
		{"POST", "/api/v1/licensing/keys", `{"instanceName":1, "x":"` + key + `"}`, nil},
		{"GET", "/api/v1/licensing/keys", "", []string{"Authorization", "Bearer " + key}},
		{"GET", "/api/v1/licensing/keys", "", []string{"X-Organization", key}},
		{"GET", "/api/v1/licensing/keys", "", []string{"X-Forwarded-For", key, "User-Agent", key}},
		{key, "/api/v1/licensing/keys", "", nil}, // as the method, which the request log writes
		{"lk_" + key, "/", "", nil},
	}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var answers []string
	for _, rq := range reqs {
		var body io.Reader
		if rq.body != "" {
			body = strings.NewReader(rq.body)
		}
		r, err := http.NewRequest(rq.method, p.url+rq.path, body)
		is.NoErr(err)
		if rq.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		r.Header.Set("Authorization", "Bearer "+owner)
		for i := 0; i+1 < len(rq.hdr); i += 2 {
			r.Header.Set(rq.hdr[i], rq.hdr[i+1])
		}
		res, err := client.Do(r)
		is.NoErr(err)
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answers = append(answers, rq.method+" "+rq.path[:min(len(rq.path), 40)]+" -> "+res.Status+" "+string(raw))
	}
	for _, a := range answers {
		t.Log(a)
	}
	contains := func(s string) bool {
		return strings.Contains(strings.ToLower(s), key)
	}
	var leaks []string
	for _, path := range []string{"/api/v1/licensing/keys", "/metrics", "/healthz", "/readyz", "/", "/api/v1/licensing/revocations?org=org-1"} {
		_, _, raw := p.do(t, "GET", path, owner, "")
		if contains(raw) {
			leaks = append(leaks, "answer of GET "+path)
		}
	}
	p.stop(t)
	if contains(p.logs.String()) {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			if contains(line) {
				leaks = append(leaks, "log: "+line[:min(len(line), 300)])
			}
		}
	}
	filepath.Walk(data, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		if contains(string(b)) {
			leaks = append(leaks, "file "+strings.TrimPrefix(path, data))
		}
		return nil
	})
	for _, l := range leaks {
		t.Errorf("full key found in %s", l)
	}
}

// TestKeyInStoredFields: a misconfigured instance (or a person pasting
// into the wrong field) sends its full key as instanceName, instanceId,
// inside instanceUrl or as a metric name; the owner pastes a key as the
// instanceName of a new key. Each field the store keeps refuses it with a
// 400 (instanceId is accepted: an instance is counted under a digest of an
// id that holds a key), and the key reaches neither the store files nor
// the list answer.
func TestKeyInStoredFields(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	data := filepath.Join(dir, "data")
	p := start(t, nil, "-config", cfgPath, "-data", data, "-rate-limit", "0", "-owner-rate-limit", "0")
	const owner = "token-owner-1"
	for _, tc := range []struct {
		name, route, body string
		status            int
	}{
		{"validate instanceName", "validate", `{"licenseKey":"KEY","instanceName":"KEY"}`, 400},
		{"validate instanceId", "validate", `{"licenseKey":"KEY","instanceId":"KEY"}`, 200},
		{"validate instanceUrl", "validate", `{"licenseKey":"KEY","instanceUrl":"https://app.example.com/?licenseKey=KEY"}`, 400},
		{"validate metric name", "validate", `{"licenseKey":"KEY","metrics":{"KEY":1}}`, 400},
		{"create instanceName", "keys", `{"instanceName":"KEY"}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			status, b, _ := p.do(t, "POST", "/api/v1/licensing/keys", owner, `{}`)
			is.Equal(status, 201)
			key := b["licenseKey"].(string)
			tok := owner
			if tc.route == "validate" {
				tok = ""
			}
			status, _, raw := p.do(t, "POST", "/api/v1/licensing/"+tc.route, tok, strings.ReplaceAll(tc.body, "KEY", key))
			is.Equal(status, tc.status)
			is.True(!strings.Contains(raw, key)) // the refusal does not repeat it
			time.Sleep(1500 * time.Millisecond)  // the validation batch reaches the store
			_, _, list := p.do(t, "GET", "/api/v1/licensing/keys", owner, "")
			inList := strings.Contains(list, key)
			inStore := false
			filepath.Walk(filepath.Join(data, "store"), func(path string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					b, _ := os.ReadFile(path)
					inStore = inStore || strings.Contains(string(b), key)
				}
				return nil
			})
			if inList || inStore {
				t.Errorf("full key accepted in %s: in list answer %v, in store files %v", tc.name, inList, inStore)
			}
		})
	}
}
