package server_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// edgeServer starts the binary with the Storno-like configuration of
// storno_test.go plus a free-plan organization, and returns it with a key of
// org-1.
func edgeServer(t *testing.T) (*proc, string) {
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

// TestPrefixEdges: the bare prefix answers the API's JSON 404 (not the
// mux's redirect to "/api/v1/licensing/"), and a path that is not clean is
// redirected to its clean form with 307, as net/http's ServeMux does, so a
// client that follows redirects (Symfony, curl -L) still reaches the route.
func TestPrefixEdges(t *testing.T) {
	p, _ := edgeServer(t)
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
