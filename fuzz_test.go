package licensing_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

// The fuzz targets of the request decoders post arbitrary bytes through a
// real HTTP server and check the contract every answer keeps: no 5xx, a JSON
// object of the documented shape, and no full license key in any error.
// .ci/run runs each briefly.

var hexRun64 = regexp.MustCompile(`[0-9a-fA-F]{64}`)

// fuzzEnv is an env with the rate limiter off and one key of org-1.
func fuzzEnv(f *testing.F) (*env, string) {
	e := newEnvHTTP(f, nil, func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	_, key := e.create(f, "t-owner", "prod")
	return e, key
}

// post sends body to path and returns status and raw answer.
func post(t *testing.T, e *env, method, path, token, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, raw
}

// checkErrorAnswer checks an error answer: a JSON object holding a
// non-empty "error" and only the documented optional fields, with no full
// key outside the echoed nonce.
func checkErrorAnswer(t *testing.T, status int, raw []byte, allowed ...string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%d: answer is not a JSON object: %q", status, raw)
	}
	msg, ok := m["error"].(string)
	if !ok || msg == "" {
		t.Fatalf("%d: no error message: %q", status, raw)
	}
	for k := range m {
		if k != "error" && !strings.Contains(" "+strings.Join(allowed, " ")+" ", " "+k+" ") {
			t.Fatalf("%d: undocumented field %q in %q", status, k, raw)
		}
	}
	withoutNonce := map[string]any{}
	for k, v := range m {
		if k != "nonce" {
			withoutNonce[k] = v
		}
	}
	b, _ := json.Marshal(withoutNonce)
	if hexRun64.Match(b) {
		t.Fatalf("%d: an error answer holds something shaped like a full key: %q", status, raw)
	}
	return m
}

// FuzzValidateBody posts arbitrary bytes to the validate route.
func FuzzValidateBody(f *testing.F) {
	e, key := fuzzEnv(f)
	for _, s := range []string{
		validateBody(key, ""),
		validateBody(key, `"nonce":"abc","instanceName":"x","instanceUrl":"https://a.example","instanceId":"i-1","metrics":{"userCount":3}`),
		validateBody(key, `"metrics":{"a":null}`),
		validateBody(key, `"metrics":{"a":1e400}`),
		validateBody(key, `"nonce":"`+strings.Repeat("n", 129)+`"`),
		validateBody(strings.ToUpper(key), ""),
		validateBody(key[:63]+"0", ""),
		"{\"licenseKey\":\"" + key + "\",\"instanceName\":\"\xff\"}",
		"{\"" + key + "\":\"\xff\"}",
		`{"licenseKey":` + nested(50) + `}`,
		``, `null`, `[]`, `{`, `{"licenseKey":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		status, hdr, raw := post(t, e, "POST", validatePath, "", "application/json", body)
		if status >= 500 {
			t.Fatalf("%d for %q: %s", status, body, raw)
		}
		if status == http.StatusOK {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("200 answer is not JSON: %q", raw)
			}
			if m["valid"] != true || m["plan"] == nil || m["organizationId"] == nil || m["violations"] == nil {
				t.Fatalf("200 answer lacks documented fields: %q", raw)
			}
			if strings.Contains(string(raw), key) {
				t.Fatalf("the key is echoed: %q", raw)
			}
			return
		}
		m := checkErrorAnswer(t, status, raw, "valid", "nonce", "plan", "billingUrl")
		if _, ok := m["valid"]; ok != (status == 401 || status == 403) {
			t.Fatalf("%d: valid field present %v: %q", status, ok, raw)
		}
		if n, ok := m["nonce"].(string); ok && (n == "" || len(n) > 128 || hdr.Get(licensing.SignatureHeader) == "") {
			t.Fatalf("%d: an echoed nonce must be a good one on a signed answer: %q", status, raw)
		}
		if status == 400 && hdr.Get(licensing.SignatureHeader) != "" && m["nonce"] == nil {
			t.Fatalf("signed without a nonce: %q", raw)
		}
	})
}

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

// FuzzListQuery sends arbitrary limit and cursor parameters to the list
// route.
func FuzzListQuery(f *testing.F) {
	e, _ := fuzzEnv(f)
	for _, s := range [][2]string{{"", ""}, {"1", ""}, {"0", ""}, {"1000", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, {"-1", "x"}, {"5", "////"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		q := url.Values{"limit": {limit}, "cursor": {cursor}}
		status, _, raw := post(t, e, "GET", keysPath+"?"+q.Encode(), "t-owner", "", nil)
		if status >= 500 {
			t.Fatalf("%d for limit %q cursor %q: %s", status, limit, cursor, raw)
		}
		if status == http.StatusOK {
			var m struct {
				Keys       []map[string]any `json:"keys"`
				NextCursor *string          `json:"nextCursor"`
			}
			if err := json.Unmarshal(raw, &m); err != nil || m.Keys == nil {
				t.Fatalf("200 answer of another shape: %q", raw)
			}
			return
		}
		checkErrorAnswer(t, status, raw)
	})
}

// FuzzRevocationsQuery sends arbitrary org and nonce parameters to the
// revocations route: a signed answer only ever echoes a nonce that keeps
// the one nonce rule.
func FuzzRevocationsQuery(f *testing.F) {
	e, _ := fuzzEnv(f)
	for _, s := range [][2]string{{"org-1", ""}, {"org-1", "abc"}, {"", "abc"}, {"", strings.Repeat("\x01", 200)}, {"org-\u202e", "n"}, {"\xff", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, org, nonce string) {
		q := url.Values{"org": {org}, "nonce": {nonce}}
		status, hdr, raw := post(t, e, "GET", "/api/v1/licensing/revocations?"+q.Encode(), "", "", nil)
		if status >= 500 {
			t.Fatalf("%d for org %q nonce %q: %s", status, org, nonce, raw)
		}
		signed := hdr.Get(licensing.SignatureHeader) != ""
		// Revocation lists are always signed, except past the rate limit
		// without a nonce; a nonce that breaks the rule signs nothing.
		goodNonce := len(nonce) <= 128 && !strings.ContainsFunc(nonce, func(r rune) bool { return r < ' ' || r > '~' })
		if status == http.StatusTooManyRequests {
			goodNonce = goodNonce && nonce != ""
		}
		if signed != goodNonce {
			t.Fatalf("signed %v for nonce %q: %s", signed, nonce, raw)
		}
		if status == http.StatusOK {
			var m wire.RevocationList
			if err := json.Unmarshal(raw, &m); err != nil || m.OrganizationID != org || m.Revoked == nil {
				t.Fatalf("200 answer of another shape: %q", raw)
			}
			return
		}
		checkErrorAnswer(t, status, raw, "nonce")
	})
}

// FuzzParseKey: ParseKey accepts exactly the strings that, trimmed and
// lower-cased, pass wire.KeyChecksumOK, and returns that form, which parses
// to itself.
func FuzzParseKey(f *testing.F) {
	body := "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
	sum := wire.KeyChecksum([]byte(body))
	good := body + string(sum[:])
	for _, s := range []string{good, strings.ToUpper(good), " \t" + good + "\n", good[:63], good + "0",
		body + "00000000", "\u00a0" + good + "\u2003", strings.Repeat("g", 64), ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := licensing.ParseKey(s)
		want := strings.ToLower(strings.TrimSpace(s))
		if ok := wire.KeyChecksumOK(want); ok != (err == nil) {
			t.Fatalf("ParseKey(%q) error %v, KeyChecksumOK %v", s, err, ok)
		}
		if err != nil {
			if got != "" {
				t.Fatalf("ParseKey(%q) returned %q with error %v", s, got, err)
			}
			if in := strings.TrimSpace(s); len(in) >= 16 && strings.Contains(err.Error(), in) {
				t.Fatalf("the error repeats the input: %v", err)
			}
			return
		}
		if got != want {
			t.Fatalf("ParseKey(%q) = %q, want %q", s, got, want)
		}
		again, err := licensing.ParseKey(strings.ToUpper(got))
		if err != nil || again != got {
			t.Fatalf("round trip of %q: %q, %v", got, again, err)
		}
		if m := licensing.MaskKey(got); m != got[:8]+"..."+got[56:] {
			t.Fatalf("MaskKey(%q) = %q", got, m)
		}
	})
}
