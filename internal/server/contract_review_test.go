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

// Promise (shared spec API.md, validate): "instanceUrl: an absolute http or
// https URL, or a bare host ...; Other schemes are a 400" (docs/API.md says
// the same). The seed system stored any non-empty value. An absolute http
// URL whose host is a single-label name (a docker-compose service, an
// intranet host), an IDN, or has an underscore is refused with 400, which
// fails the whole validation: such an instance never validates again.
func TestReviewInstanceURLAbsoluteHTTPAccepted(t *testing.T) {
	p, key := reviewServer(t)
	for _, u := range []string{
		"http://storno:8000",
		"http://storno-app:8000/",
		"http://intranet/facturi",
		"https://factură.ro",
		"http://storno_app:8000",
	} {
		t.Run(u, func(t *testing.T) {
			is := is.New(t)
			status, _, raw := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`","instanceUrl":"`+u+`"}`)
			t.Log(raw)
			is.Equal(status, 200) // an absolute http(s) URL is not "another scheme"
		})
	}
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

// Promise (shared spec API.md, common rules): "Every error body is
// {"error": "<human readable>"}" and bodies are JSON, for every route under
// the prefix. The prefix itself without its slash, and a doubled slash,
// answer the mux's text/html or empty 307 instead.
func TestReviewPrefixEdgesAnswerJSON(t *testing.T) {
	p, _ := reviewServer(t)
	for _, path := range []string{"/api/v1/licensing", "//api/v1/licensing/validate"} {
		t.Run(path, func(t *testing.T) {
			is := is.New(t)
			res, body := rawDo(t, "POST", p.url+path, `{}`, "Content-Type", "application/json")
			t.Logf("%d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
			is.True(strings.HasPrefix(res.Header.Get("Content-Type"), "application/json"))
		})
	}
}

// Storno's LicenseValidationService::getBillingUrl uses
// `$cached['billingUrl'] ?? <server>/settings/billing`: only a missing or
// null billingUrl falls back. The reference server without a configured
// billingUrl sends "billingUrl":"" (the seed always sent a URL), so Storno's
// upgrade link becomes "".
func TestReviewEmptyBillingURLNotSent(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	is.NoErr(os.WriteFile(cfg, []byte(`{"plans": {"business": {"selfHostingLicense": true}},
  "organizations": [{"id": "org-1", "name": "A", "ownerId": "user-1", "plan": "business", "active": true}],
  "tokens": [{"sha256": "`+sha("token-owner-1")+`", "userId": "user-1"}]}`), 0o600))
	p := start(t, nil, "-config", cfg, "-data", filepath.Join(dir, "data"), "-store", "memory")
	_, m, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	status, v, raw := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+m["licenseKey"].(string)+`"}`)
	is.Equal(status, 200)
	bu, present := v["billingUrl"]
	t.Logf("%s", raw)
	is.True(!present || bu != "") // "" defeats the client's ?? fallback
}

// Promise (docs/API.md): "400 Malformed JSON body. | the body is not a JSON
// object" (create). The server creates a key for the body `null`. (The ops
// routes' 405 is TestServerRoutesMethodNotAllowed in contract_test.go.)
func TestReviewDocumentedEdgeAnswers(t *testing.T) {
	p, _ := reviewServer(t)
	t.Run("create with body null", func(t *testing.T) {
		is := is.New(t)
		status, _, raw := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `null`)
		t.Log(raw)
		is.Equal(status, 400) // not a JSON object
	})
}
