package server_test

// Adversarial review (review2): places where the running reference server
// differs from /work/shared/spec/API.md, docs/API.md or docs/openapi.yaml.
// Each test states the promise it holds the binary to; each fails on the
// commit reviewed.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// reviewServer starts the binary with the Storno-like configuration of
// storno_test.go plus a free-plan organization, and returns it with a key of
// org-1.
func reviewServer(t *testing.T) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{
  "issuer": "storno.ro",
  "billingUrl": "https://app.example.ro/settings/billing",
  "requiredFeature": "selfHostingLicense",
  "plans": {"business": {"selfHostingLicense": true, "maxCompanies": 10, "maxUsersPerOrg": 10}, "free": {"selfHostingLicense": false}},
  "organizations": [
    {"id": "org-1", "name": "SC Firma Mea SRL", "ownerId": "user-1", "plan": "business", "active": true},
    {"id": "org-free", "name": "Free SRL", "ownerId": "user-1", "plan": "free", "active": true}
  ],
  "tokens": [{"sha256": "`+sha("token-owner-1")+`", "userId": "user-1"}]
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, nil, "-config", cfg, "-data", filepath.Join(dir, "data"), "-store", "memory", "-rate-limit", "0")
	status, m, raw := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	if status != 201 {
		t.Fatalf("create: %d %s", status, raw)
	}
	return p, m["licenseKey"].(string)
}

func rawDo(t *testing.T, method, url, body string, hdr ...string) (*http.Response, string) {
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
	res, err := http.DefaultTransport.RoundTrip(req) // no redirect following
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// Promise (docs/API.md, Cross-origin protection): "A request with an
// Authorization header ... is not affected, so a single-page application on
// another origin keeps working." A browser sends a CORS preflight before any
// request carrying Authorization; the server answers it 405 with no
// Access-Control-Allow-* header, and the 201 has no
// Access-Control-Allow-Origin, so the browser blocks the SPA.
func TestReviewCrossOriginSPAPreflight(t *testing.T) {
	is := is.New(t)
	p, _ := reviewServer(t)
	res, body := rawDo(t, "OPTIONS", p.url+"/api/v1/licensing/keys", "",
		"Origin", "https://spa.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
	t.Logf("preflight: %d %v %s", res.StatusCode, res.Header, body)
	is.True(res.StatusCode/100 == 2)                             // preflight allowed
	is.True(res.Header.Get("Access-Control-Allow-Origin") != "") // browser needs this
	res, _ = rawDo(t, "POST", p.url+"/api/v1/licensing/keys", `{}`,
		"Origin", "https://spa.example", "Authorization", "Bearer token-owner-1", "Content-Type", "application/json")
	is.Equal(res.StatusCode, 201)
	is.True(res.Header.Get("Access-Control-Allow-Origin") != "") // else the SPA cannot read its key
}

// Promise (docs/API.md, Owner authentication): the plan text is "by default
// `The <plan> plan does not include self-hosted licenses; please upgrade
// your plan.`" (openapi.yaml's planNotEligible examples say the same).
// The server's default (service.go DefaultNotEligibleMessage) is another text.
func TestReviewDefaultPlanTextAsDocumented(t *testing.T) {
	is := is.New(t)
	p, _ := reviewServer(t)
	status, m, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`, "X-Organization", "org-free")
	is.Equal(status, 403)
	is.Equal(m["error"], "The free plan does not include self-hosted licenses; please upgrade your plan.")
}

// Promise (docs/API.md, Conventions): "Answers are application/json with
// X-Content-Type-Options: nosniff ... (the PEM route excepted)". The JWKS
// answer has no nosniff header.
func TestReviewJWKSNoSniff(t *testing.T) {
	is := is.New(t)
	p, _ := reviewServer(t)
	for _, m := range []string{"GET", "HEAD"} {
		res, _ := rawDo(t, m, p.url+"/api/v1/licensing/public-keys", "")
		is.Equal(res.StatusCode, 200)
		is.Equal(res.Header.Get("X-Content-Type-Options"), "nosniff")
	}
}

// Promise (docs/openapi.yaml): the error examples of the list and validate
// operations. "docs/API.md ... the two say the same thing"; the server says
// otherwise (apitest only schema-checks these, so it does not notice).
func TestReviewOpenAPIErrorTexts(t *testing.T) {
	p, key := reviewServer(t)
	tests := []struct{ name, method, path, body, want string }{
		{"badLimit", "GET", "/api/v1/licensing/keys?limit=0", "", "limit must be an integer from 1 to 1000"},
		{"badCursor", "GET", "/api/v1/licensing/keys?limit=1&cursor=not-a-cursor", "", "cursor is invalid"},
		{"otherScheme", "POST", "/api/v1/licensing/validate", `{"licenseKey":"` + key + `","instanceUrl":"javascript:alert(1)"}`,
			"instanceUrl must be an absolute http or https URL or a host, of at most 2048 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			status, m, _ := p.do(t, tc.method, tc.path, "token-owner-1", tc.body)
			is.Equal(status, 400)
			is.Equal(m["error"], tc.want)
		})
	}
}

// TestPrefixEdges: the bare prefix answers the API's JSON 404 (not the
// mux's redirect to "/api/v1/licensing/"), and a path that is not clean is
// redirected to its clean form with 307, as net/http's ServeMux does, so a
// client that follows redirects (Symfony, curl -L) still reaches the route.
func TestPrefixEdges(t *testing.T) {
	p, _ := reviewServer(t)
	t.Run("bare prefix", func(t *testing.T) {
		is := is.New(t)
		res, body := rawDo(t, "POST", p.url+"/api/v1/licensing", `{}`, "Content-Type", "application/json")
		is.Equal(res.StatusCode, 404)
		is.Equal(body, `{"error":"Not found."}`+"\n")
	})
	t.Run("double slash", func(t *testing.T) {
		is := is.New(t)
		res, _ := rawDo(t, "POST", p.url+"//api/v1/licensing/validate", `{}`, "Content-Type", "application/json")
		is.Equal(res.StatusCode, 307)
		is.Equal(res.Header.Get("Location"), "/api/v1/licensing/validate")
	})
}

// Promise (docs/API.md): "400 Malformed JSON body. | the body is not a JSON
// object" (create) and, for the reference server's /healthz, /readyz and
// /metrics, "Other methods on these paths: 405 with Allow, plain text (the
// standard library's answer)". The server creates a key for the body
// `null` and answers those 405s in JSON.
func TestReviewDocumentedEdgeAnswers(t *testing.T) {
	p, _ := reviewServer(t)
	t.Run("create with body null", func(t *testing.T) {
		is := is.New(t)
		status, _, raw := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `null`)
		t.Log(raw)
		is.Equal(status, 400) // not a JSON object
	})
	t.Run("POST /healthz", func(t *testing.T) {
		is := is.New(t)
		res, body := rawDo(t, "POST", p.url+"/healthz", "")
		t.Logf("%d %q %s", res.StatusCode, res.Header.Get("Content-Type"), body)
		is.Equal(res.StatusCode, 405)
		is.True(strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain"))
	})
}
