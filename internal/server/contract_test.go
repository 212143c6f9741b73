package server_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"
)

// The reference server against the texts and headers docs/API.md and
// docs/openapi.yaml promise. apitest holds every example of openapi.yaml
// against the binary; these tests keep the documented answers that matter
// most to embedders here too, where `go test ./...` of the root module runs
// them.

// contractConfig is a Storno-like configuration: org-1 on a plan with
// self-hosting, org-free on one without, and org-down, whose plan loses
// self-hosting when downgraded is set.
func contractConfig(downgraded bool) string {
	downPlan := "business"
	if downgraded {
		downPlan = "free"
	}
	return `{
  "issuer": "storno.ro",
  "billingUrl": "https://app.example.ro/settings/billing",
  "requiredFeature": "selfHostingLicense",
  "plans": {"business": {"selfHostingLicense": true, "maxCompanies": 10}, "free": {"selfHostingLicense": false}},
  "organizations": [
    {"id": "org-1", "name": "SC Firma Mea SRL", "ownerId": "user-1", "plan": "business", "active": true},
    {"id": "org-free", "name": "Free SRL", "ownerId": "user-1", "plan": "free", "active": true},
    {"id": "org-down", "name": "Downgraded SRL", "ownerId": "user-1", "plan": "` + downPlan + `", "active": true}
  ],
  "tokens": [{"sha256": "` + sha("token-owner-1") + `", "userId": "user-1"}]
}`
}

// contractServer starts the binary with contractConfig (and the extra
// flags) and returns it with the path of its configuration file.
func contractServer(t *testing.T, extra ...string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(contractConfig(false)), 0o600); err != nil {
		t.Fatal(err)
	}
	return start(t, nil, append([]string{"-config", cfg, "-data", filepath.Join(dir, "data"), "-store", "memory", "-rate-limit", "0"}, extra...)...), cfg
}

// sendRaw sends one request with the headers hdr (name, value, ...) and no
// redirect following, and returns the answer with its body.
func sendRaw(t *testing.T, method, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// documents returns docs/API.md and docs/openapi.yaml with every run of
// white space made one space, so that a text wrapped across lines is found.
func documents(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"API.md", "openapi.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = strings.Join(strings.Fields(string(b)), " ")
	}
	return out
}

// The default texts of a plan without self-hosting are what the server
// sends, and are the texts the documents give.
func TestDefaultPlanTextsAsDocumented(t *testing.T) {
	is := is.New(t)
	p, cfg := contractServer(t)
	status, m, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`, "X-Organization", "org-down")
	is.Equal(status, 201) // before the downgrade
	key, _ := m["licenseKey"].(string)
	id, _ := m["id"].(string)
	is.True(key != "" && id != "")

	// Downgrade org-down and reload.
	is.NoErr(os.WriteFile(cfg, []byte(contractConfig(true)), 0o600))
	is.NoErr(p.cmd.Process.Signal(syscall.SIGHUP))
	for i := 0; !strings.Contains(p.logs.String(), "configuration reloaded"); i++ {
		if i == 500 {
			t.Fatalf("no reload:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	docs := documents(t)
	tests := []struct {
		name, path, token, body, org string
		want                         string
		docs                         []string // the documents that give the text
	}{
		{"create", "/api/v1/licensing/keys", "token-owner-1", `{}`, "org-free", "Your plan does not include self-hosted licenses; upgrade your plan in the billing settings to create license keys.", []string{"API.md", "openapi.yaml"}},
		{"token", "/api/v1/licensing/keys/" + id + "/jwt", "token-owner-1", "", "org-down", "Your plan does not include self-hosted licenses; upgrade your plan in the billing settings to create license keys.", []string{"API.md"}},
		{"validate", "/api/v1/licensing/validate", "", `{"licenseKey":"` + key + `"}`, "", "This organization's plan does not include self-hosted licenses; ask the organization owner to upgrade the plan in the billing settings.", []string{"API.md", "openapi.yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			var hdr []string
			if tc.org != "" {
				hdr = []string{"X-Organization", tc.org}
			}
			status, m, raw := p.do(t, "POST", tc.path, tc.token, tc.body, hdr...)
			t.Log(raw)
			is.Equal(status, 403)
			is.Equal(m["error"], tc.want)
			for _, d := range tc.docs {
				if !strings.Contains(docs[d], tc.want) {
					t.Errorf("docs/%s does not give the text %q", d, tc.want)
				}
			}
		})
	}
}

// The error texts of openapi.yaml's examples that apitest once only
// schema-checked are the server's, word for word.
func TestErrorTextsAsDocumented(t *testing.T) {
	p, _ := contractServer(t)
	_, m, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	key, id := m["licenseKey"].(string), m["id"].(string)
	docs := documents(t)
	tests := []struct{ name, method, path, body, want string }{
		{"limit 0", "GET", "/api/v1/licensing/keys?limit=0", "", "limit must be a whole number from 1 to 1000"},
		{"limit not a number", "GET", "/api/v1/licensing/keys?limit=ten", "", "limit must be a whole number from 1 to 1000"},
		{"limit 1001", "GET", "/api/v1/licensing/keys?limit=1001", "", "limit must be a whole number from 1 to 1000"},
		{"a cursor not made here", "GET", "/api/v1/licensing/keys?limit=1&cursor=not-a-cursor", "", "cursor is not one this server made"},
		{"instanceUrl with another scheme", "POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key + `","instanceUrl":"javascript:alert(1)"}`,
			"instanceUrl must be an http or https URL, or a host name with an optional port and path, of at most 2048 characters"},
		{"instanceName too long", "POST", "/api/v1/licensing/keys", `{"instanceName":"` + strings.Repeat("x", 256) + `"}`,
			"instanceName must be valid text of at most 255 characters without control or format characters"},
		{"instanceName with a bidi override", "POST", "/api/v1/licensing/keys", `{"instanceName":"a\u202eb"}`,
			"instanceName must be valid text of at most 255 characters without control or format characters"},
		{"org too long", "GET", "/api/v1/licensing/revocations?org=" + strings.Repeat("o", 256), "",
			"org must be at most 255 characters without control or format characters"},
		{"expiresAt in the past", "POST", "/api/v1/licensing/keys", `{"expiresAt":"2020-01-01T00:00:00+00:00"}`,
			"expiresAt must be in the future (or null for a key that never expires)"},
		{"expiresAt not a time", "PATCH", "/api/v1/licensing/keys/" + id, `{"expiresAt":2099}`,
			"expiresAt must be a time such as 2026-02-20T10:30:00+00:00 (RFC 3339), or null for never"},
		{"PATCH with an unknown field", "PATCH", "/api/v1/licensing/keys/" + id, `{"active":true}`,
			`The body has unknown field "active"; this route accepts expiresAt, maxInstances.`},
		{"overlapHours out of bounds", "POST", "/api/v1/licensing/keys/" + id + "/rotate", `{"overlapHours":2161}`,
			"overlapHours must be a whole number from 0 to 2160 (90 days); the default is 168 (7 days)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			status, m, raw := p.do(t, tc.method, tc.path, "token-owner-1", tc.body)
			t.Log(raw)
			is.Equal(status, 400)
			is.Equal(m["error"], tc.want)
			if !strings.Contains(docs["openapi.yaml"], tc.want) {
				t.Errorf("docs/openapi.yaml has no example with the text %q", tc.want)
			}
		})
	}
}

// docs/API.md, "No CORS": the handler sends no CORS headers and answers a
// preflight 405 with Allow; cross-origin requests carrying an Authorization
// header are served, those relying on ambient credentials refused.
func TestCrossOriginWithoutCORS(t *testing.T) {
	p, _ := contractServer(t)
	keys := p.url + "/api/v1/licensing/keys"
	const refused = "Cross-origin request refused; send an Authorization header or use a trusted origin."
	tests := []struct {
		name, method, body string
		hdr                []string
		status             int
		allow, text        string // "" when not checked
	}{
		{"preflight", "OPTIONS", "", []string{"Origin", "https://spa.example", "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization,content-type", "Sec-Fetch-Site", "cross-site"},
			405, "GET, HEAD, POST", "Method not allowed; use GET, HEAD, POST."},
		{"cross-site with Authorization", "POST", `{}`, []string{"Origin", "https://spa.example", "Sec-Fetch-Site", "cross-site",
			"Authorization", "Bearer token-owner-1", "Content-Type", "application/json"}, 201, "", ""},
		{"old browser, other Origin, with Authorization", "POST", `{}`, []string{"Origin", "https://spa.example",
			"Authorization", "Bearer token-owner-1"}, 201, "", ""},
		{"cross-site with a cookie", "POST", `{}`, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site",
			"Cookie", "session=1"}, 403, "", refused},
		{"same-site with a cookie", "POST", `{}`, []string{"Origin", "https://sub.example", "Sec-Fetch-Site", "same-site",
			"Cookie", "session=1"}, 403, "", refused},
		{"old browser, other Origin, cookie", "POST", `{}`, []string{"Origin", "https://evil.example", "Cookie", "session=1"}, 403, "", refused},
		{"cross-site revoke with a cookie", "DELETE", "", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site",
			"Cookie", "session=1"}, 403, "", refused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			url := keys
			if tc.method == "DELETE" {
				url += "/019c8a12-0000-7000-8000-000000000000"
			}
			res, body := sendRaw(t, tc.method, url, tc.body, tc.hdr...)
			t.Logf("%d %v %s", res.StatusCode, res.Header, body)
			is.Equal(res.StatusCode, tc.status)
			for name := range res.Header {
				if strings.HasPrefix(strings.ToLower(name), "access-control-") {
					t.Errorf("answer has %s: %q; the handler sends no CORS headers", name, res.Header.Get(name))
				}
			}
			if tc.allow != "" {
				is.Equal(res.Header.Get("Allow"), tc.allow)
			}
			if tc.text != "" {
				is.Equal(body, `{"error":"`+tc.text+`"}`+"\n")
			}
		})
	}
}

// docs/API.md, Reference server routes: other methods on /healthz, /readyz
// and /metrics get 405 with "Allow: GET, HEAD" and a JSON error.
func TestServerRoutesMethodNotAllowed(t *testing.T) {
	p, _ := contractServer(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
			t.Run(method+" "+path, func(t *testing.T) {
				is := is.New(t)
				res, body := sendRaw(t, method, p.url+path, "")
				is.Equal(res.StatusCode, 405)
				is.Equal(res.Header.Get("Allow"), "GET, HEAD")
				is.True(strings.HasPrefix(res.Header.Get("Content-Type"), "application/json"))
				is.Equal(body, `{"error":"Method not allowed; use GET."}`+"\n")
			})
		}
	}
}

// TestPrefixEdges: the bare prefix answers the API's JSON 404 (not the
// mux's redirect to "/api/v1/licensing/"), and a path that is not clean is
// redirected to its clean form with 307, as net/http's ServeMux does, so a
// client that follows redirects (Symfony, curl -L) still reaches the route.
func TestPrefixEdges(t *testing.T) {
	p, _ := contractServer(t)
	t.Run("bare prefix", func(t *testing.T) {
		is := is.New(t)
		res, body := sendRaw(t, "POST", p.url+"/api/v1/licensing", `{}`, "Content-Type", "application/json")
		is.Equal(res.StatusCode, 404)
		is.Equal(body, `{"error":"Not found."}`+"\n")
	})
	t.Run("double slash", func(t *testing.T) {
		is := is.New(t)
		res, _ := sendRaw(t, "POST", p.url+"//api/v1/licensing/validate", `{}`, "Content-Type", "application/json")
		is.Equal(res.StatusCode, 307)
		is.Equal(res.Header.Get("Location"), "/api/v1/licensing/validate")
	})
}
