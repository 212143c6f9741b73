package licensing_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzCreateBody posts arbitrary bytes as an owner to the create route,
// under an arbitrary declared content type.
func FuzzCreateBody(f *testing.F) {
	e, _ := fuzzEnv(f)
	for _, s := range [][2]string{
		{`{"instanceName":"Production Server"}`, "application/json"},
		{`{"instanceName":"a\u202eb"}`, "text/plain"},
		{"{\"instanceName\":\"a\xffb\"}", "application/x-www-form-urlencoded"},
		{`{"instanceName":5}`, ""},
		{nested(100), "application/json"},
		{`instanceName=x`, "application/x-www-form-urlencoded"},
		{`{"instanceName":null,"color":"blue"}`, "application/json; charset=utf-8"},
	} {
		f.Add([]byte(s[0]), s[1])
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		if len(contentType) > 256 || strings.ContainsFunc(contentType, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return // the client refuses such headers
		}
		status, _, raw := post(t, e, "POST", keysPath, "t-owner", contentType, body)
		if status >= 500 {
			t.Fatalf("%d for %q: %s", status, body, raw)
		}
		if status == http.StatusCreated {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("201 answer is not JSON: %q", raw)
			}
			if len(m) != 6 || !uuidV7.MatchString(m["id"].(string)) || !fullKey.MatchString(m["licenseKey"].(string)) {
				t.Fatalf("201 answer of another shape: %q", raw)
			}
			if name, ok := m["instanceName"].(string); ok && strings.ContainsAny(name, "\u202e\u200b\x00\ufffd") {
				t.Fatalf("a name with a control, format or replacement character was stored: %q", raw)
			}
			return
		}
		checkErrorAnswer(t, status, raw)
	})
}
