package server_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestValidationWritesNothingByDefault: with default flags, validations
// (passed, failed, malformed) add no line to the log, not even at shutdown.
func TestValidationWritesNothingByDefault(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	writeConfig(t, cfg, "business")
	p := start(t, nil, "-config", cfg, "-data", filepath.Join(dir, "data"), "-store", "memory")
	status, b, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{"instanceName":"prod"}`)
	is.Equal(status, 201)
	key := b["licenseKey"].(string)
	time.Sleep(300 * time.Millisecond) // longer than any buffering
	before := p.logs.String()
	is.True(strings.Contains(before, "type=key.created")) // owner actions are logged
	for _, body := range []string{`{"licenseKey":"` + key + `"}`, `{"licenseKey":"` + strings.Repeat("0", 64) + `"}`,
		`{"licenseKey":"nope"}`, `{"licenseKey":`} {
		p.do(t, "POST", "/api/v1/licensing/validate", "", body)
	}
	time.Sleep(300 * time.Millisecond)
	is.Equal(p.logs.String(), before) // nothing written while running
	p.stop(t)
	after := p.logs.String()
	is.True(strings.HasPrefix(after, before))
	rest := after[len(before):]
	is.True(!strings.Contains(rest, "validat")) // nor at shutdown
	is.True(!strings.Contains(rest, "request"))
	is.True(!strings.Contains(after, key))
}

// TestRequestLog: with -request-log on, one line per request at the chosen
// level, in the chosen format, with no key or token, all written by the
// time the server has stopped.
func TestRequestLog(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		level  string // as it appears in the line
		json   bool
		events bool // validation events at debug
	}{
		{"info, text", []string{"-request-log", "info"}, "INFO", false, false},
		{"warn, json", []string{"-request-log", "warn", "-log-format", "json"}, "WARN", true, false},
		{"debug, with debug events", []string{"-request-log", "debug", "-log-level", "debug"}, "DEBUG", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "config.json")
			writeConfig(t, cfg, "business")
			p := start(t, nil, append([]string{"-config", cfg, "-data", filepath.Join(dir, "data"), "-store", "memory"}, tc.args...)...)
			const owner = "token-owner-1"
			status, b, _ := p.do(t, "POST", "/api/v1/licensing/keys", owner, `{"instanceName":"prod"}`)
			is.Equal(status, 201)
			key := b["licenseKey"].(string)
			requests := []struct{ method, path, token, body string }{
				{"POST", "/api/v1/licensing/validate", "", `{"licenseKey":"` + key + `","instanceName":"x"}`},
				{"POST", "/api/v1/licensing/validate", "", `{"licenseKey":"` + strings.ToUpper(key) + `"}`},
				{"POST", "/api/v1/licensing/validate", "", `{"licenseKey":"` + strings.Repeat("ab", 32) + `"}`},
				{"GET", "/api/v1/licensing/keys", owner, ""},
				{"GET", "/api/v1/licensing/keys/" + key, owner, ""},                     // a key pasted into a path
				{"GET", "/api/v1/licensing/revocations?org=org-1&nonce=" + key, "", ""}, // and into a query
				{"POST", "/api/v1/licensing/keys", "wrong-" + owner, `{}`},
			}
			for _, r := range requests {
				p.do(t, r.method, r.path, r.token, r.body)
			}
			p.stop(t)
			logs := p.logs.String()
			for _, secret := range []string{key, strings.ToUpper(key), key[8:56], owner, strings.Repeat("ab", 32)} {
				is.True(!strings.Contains(logs, secret)) // no key or token in any line
			}
			var lines, validated int
			for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
				if strings.HasPrefix(line, "owner token") {
					continue
				}
				var level, msg, typ string
				if tc.json {
					var m map[string]any
					is.NoErr(json.Unmarshal([]byte(line), &m)) // every line is JSON
					level, msg, typ = m["level"].(string), m["msg"].(string), "type="+asString(m["type"])
				} else {
					level, msg, typ = logField(line, "level"), logField(line, "msg"), "type="+logField(line, "type")
				}
				if msg == "request" {
					lines++
					is.Equal(level, tc.level) // at the chosen level
				}
				if typ == "type=key.validated" {
					validated++
					is.Equal(level, "DEBUG")
				}
			}
			is.Equal(lines, len(requests)+1) // one line per request, the create included
			if tc.events {
				is.Equal(validated, 2)
			} else {
				is.Equal(validated, 0)
			}
		})
	}
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// logField returns the value of name=value in a text log line.
func logField(line, name string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestRequestLogRedactsBeforeCutting: a path longer than 256 bytes is cut
// in the request log, and a key in it is redacted first: a key that
// straddles the cut (so that only its first hex digits would be left, too
// few to look like a key) leaves none of its digits in the log.
func TestRequestLogRedactsBeforeCutting(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	writeConfig(t, cfg, "business")
	p := start(t, nil, "-config", cfg, "-data", filepath.Join(dir, "data"), "-store", "memory", "-request-log", "info")
	status, b, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{"instanceName":"prod"}`)
	is.Equal(status, 201)
	key := b["licenseKey"].(string)
	const prefix = "/api/v1/licensing/keys/"
	for _, at := range []int{200, 226, 240, 250, 255, 256, 300} { // where the key starts in the path
		path := prefix + strings.Repeat("x", at-len(prefix)) + key
		p.do(t, "GET", path, "token-owner-1", "")
	}
	p.stop(t)
	logs := p.logs.String()
	is.True(strings.Contains(logs, prefix+"xxxx")) // the requests were logged
	for i := 0; i+12 <= len(key); i++ {
		if strings.Contains(logs, key[i:i+12]) {
			t.Fatalf("the log holds %q, part of the key", key[i:i+12])
		}
	}
}
