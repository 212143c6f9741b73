package server_test

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/matryer/is"
)

// stornoClient runs testdata/storno/selfhosted.php, which talks to the server
// as the seed system's self-hosted client does, and decodes what it prints.
func stornoClient(t *testing.T, p *proc, env ...string) map[string]any {
	t.Helper()
	needTool(t, "php", "php-cli")
	cmd := exec.Command("php", "testdata/storno/selfhosted.php")
	cmd.Env = append(os.Environ(), append([]string{"BASE_URL=" + p.url}, env...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("php: %v: %s", err, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("php printed %q: %v", out, err)
	}
	return m
}

// stornoConfig writes, in dir, the configuration of a Storno vendor
// starting out: default plans and limits, no "limits" and no
// maxOrganizations.
func stornoConfig(t *testing.T, dir string) string {
	t.Helper()
	cfg := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfg, []byte(`{
  "issuer": "licensing.storno.example",
  "requiredFeature": "selfHostingLicense",
  "plans": {"business": {"selfHostingLicense": true, "maxCompanies": 10, "maxUsersPerOrg": 10}},
  "organizations": [
    {"id": "org-1", "name": "SC Firma Mea SRL", "ownerId": "user-1", "members": ["user-2"], "plan": "business", "active": true},
    {"id": "org-2", "name": "Inactive SRL", "ownerId": "user-3", "plan": "business", "active": false}
  ],
  "tokens": [{"sha256": "`+sha("token-owner-1")+`", "userId": "user-1"}, {"sha256": "`+sha("token-member-2")+`", "userId": "user-2"},
             {"sha256": "`+sha("token-owner-3")+`", "userId": "user-3"}]
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestStornoSelfHostedClient(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg := stornoConfig(t, dir)
	p := start(t, nil, "-config", cfg, "-data", filepath.Join(dir, "data"))

	status, created, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{"instanceName":"Production Server"}`)
	is.Equal(status, 201)
	key, id := created["licenseKey"].(string), created["id"].(string)

	// Validation with FRONTEND_URL sent verbatim, without a scheme.
	res := stornoClient(t, p, "MODE=validate", "LICENSE_KEY="+key, "FRONTEND_URL=app.example.com")
	is.Equal(res["status"], 200.0)
	body := res["body"].(map[string]any)
	is.Equal(body["valid"], true)
	is.Equal(body["plan"], "business")
	is.Equal(body["violations"], []any{"Multiple organizations detected (2). Self-hosted licenses allow 1."}) // Storno's violation, default plans
	_, hasExpiry := body["expiresAt"]
	is.True(!hasExpiry) // a key without expiry: the answer Storno reads is unchanged
	_, _, raw := p.do(t, "GET", "/api/v1/licensing/keys", "token-owner-1", "")
	var list struct{ Keys []map[string]any }
	is.NoErr(json.Unmarshal([]byte(raw), &list))
	is.Equal(list.Keys[0]["instanceUrl"], "app.example.com") // stored and listed as sent
	is.Equal(list.Keys[0]["instanceMetrics"].(map[string]any)["orgCount"], 2.0)

	// The offline token from the default route: RS256, verified against the PEM the server publishes.
	status, tok, _ := p.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt", "token-owner-1", "")
	is.Equal(status, 200)
	claims := stornoClient(t, p, "MODE=token", "TOKEN="+tok["jwt"].(string))
	is.Equal(claims["iss"], "licensing.storno.example")
	is.Equal(claims["sub"], "org-1")
	is.Equal(claims["plan"], "business")
	is.Equal(claims["jti"], id)
	is.Equal(claims["orgName"], "SC Firma Mea SRL")

	// The seed system's exact error texts, which its frontend translates.
	texts := []struct {
		name, method, path, token, body string
		hdr                             []string
		status                          int
		text                            string
	}{
		{"member creates", "POST", "/api/v1/licensing/keys", "token-member-2", `{}`, nil, 403, "Permission denied"},
		{"unknown organization", "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`, []string{"X-Organization", "org-404"}, 404, "Organization not found"},
		{"inactive organization", "POST", "/api/v1/licensing/keys", "token-owner-3", `{}`, nil, 403, "Organization is inactive"},
		{"unknown key", "DELETE", "/api/v1/licensing/keys/019c8a12-4567-7abc-def0-123456789abc", "token-owner-1", "", nil, 404, "License key not found"},
		{"no key", "POST", "/api/v1/licensing/validate", "", `{"instanceUrl":"app.example.com"}`, nil, 400, "licenseKey is required"},
	}
	for _, tc := range texts {
		status, m, _ := p.do(t, tc.method, tc.path, tc.token, tc.body, tc.hdr...)
		is.Equal(status, tc.status)
		is.Equal(m["error"], tc.text) // the seed system's text
	}

	// Revocation: the instance learns it at its next validation.
	status, _, _ = p.do(t, "DELETE", "/api/v1/licensing/keys/"+id, "token-owner-1", "")
	is.Equal(status, 200)
	res = stornoClient(t, p, "MODE=validate", "LICENSE_KEY="+key, "FRONTEND_URL=app.example.com")
	is.Equal(res["status"], 401.0)
	is.Equal(res["body"], map[string]any{"valid": false, "error": "Invalid or revoked license key"})
	status, m, _ := p.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt", "token-owner-1", "")
	is.Equal(status, 403)
	is.Equal(m["error"], "License key is revoked")

	// An expired key reaches Storno's client as any refused key does: a 401
	// with valid false and an error text (its grace path); the expiry comes
	// beside them.
	status, created, _ = p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{"instanceName":"Expiring","expiresAt":"2099-01-01T00:00:00+00:00"}`)
	is.Equal(status, 201)
	expiring, expiringID := created["licenseKey"].(string), created["id"].(string)
	res = stornoClient(t, p, "MODE=validate", "LICENSE_KEY="+expiring, "FRONTEND_URL=app.example.com")
	is.Equal(res["status"], 200.0)
	is.Equal(res["body"].(map[string]any)["valid"], true)
	is.Equal(res["body"].(map[string]any)["expiresAt"], "2099-01-01T00:00:00+00:00") // told before it expires
	status, _, _ = p.do(t, "PATCH", "/api/v1/licensing/keys/"+expiringID, "token-owner-1", `{"expiresAt":"2026-01-01T00:00:00+00:00"}`)
	is.Equal(status, 200)
	res = stornoClient(t, p, "MODE=validate", "LICENSE_KEY="+expiring, "FRONTEND_URL=app.example.com")
	is.Equal(res["status"], 401.0) // the status of every refused key
	is.Equal(res["body"], map[string]any{"valid": false, "error": "License key has expired", "expiresAt": "2026-01-01T00:00:00+00:00"})

	// Past the rate limit: the seed system's 429 text.
	limited := start(t, nil, "-config", cfg, "-data", filepath.Join(dir, "data2"), "-rate-limit", "1", "-rate-burst", "1")
	stornoClient(t, limited, "MODE=validate", "LICENSE_KEY="+key, "FRONTEND_URL=app.example.com")
	res = stornoClient(t, limited, "MODE=validate", "LICENSE_KEY="+key, "FRONTEND_URL=app.example.com")
	is.Equal(res["status"], 429.0)
	is.Equal(res["body"], map[string]any{"error": "Too many requests."})
}

// TestStornoInstancesCountedByURL: Storno's client sends no instanceId, so
// its instances are counted by their FRONTEND_URL, normalized: one site
// spelled differently (case, default port, trailing slash) is one instance,
// two sites are two; a key limited to two instances refuses a third site
// with the seat-limit answer until the owner frees a seat.
func TestStornoInstancesCountedByURL(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	p := start(t, nil, "-config", stornoConfig(t, dir), "-data", filepath.Join(dir, "data"))
	status, created, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{"instanceName":"Production Server","maxInstances":2}`)
	is.Equal(status, 201)
	key, id := created["licenseKey"].(string), created["id"].(string)
	instances := func() []any {
		t.Helper()
		status, m, raw := p.do(t, "GET", "/api/v1/licensing/keys/"+id+"/instances", "token-owner-1", "")
		is.Equal(status, 200) // the instance list
		if m == nil {
			t.Fatalf("instances: %s", raw)
		}
		return m["instances"].([]any)
	}

	for _, u := range []string{"app.example.com", "https://APP.example.com:443/", "https://app.example.com//", "App.Example.Com"} {
		res := stornoClient(t, p, "MODE=validate", "LICENSE_KEY="+key, "FRONTEND_URL="+u)
		is.Equal(res["status"], 200.0)
	}
	list := instances()
	is.Equal(len(list), 1) // four spellings of one site
	is.Equal(list[0].(map[string]any)["id"], "https://app.example.com")
	is.Equal(list[0].(map[string]any)["instanceUrl"], "App.Example.Com") // as last sent

	res := stornoClient(t, p, "MODE=validate", "LICENSE_KEY="+key, "FRONTEND_URL=https://factura.other.ro")
	is.Equal(res["status"], 200.0)
	is.Equal(len(instances()), 2) // another site is another instance
	_, _, raw := p.do(t, "GET", "/api/v1/licensing/keys", "token-owner-1", "")
	var keys struct{ Keys []map[string]any }
	is.NoErr(json.Unmarshal([]byte(raw), &keys))
	is.Equal(keys.Keys[0]["lastViolations"], []any{"Multiple organizations detected (2). Self-hosted licenses allow 1.",
		"This license key is shared by 2 instances within 3 days."}) // told to the owner, not to the instance

	res = stornoClient(t, p, "MODE=validate", "LICENSE_KEY="+key, "FRONTEND_URL=third.example.net")
	is.Equal(res["status"], 403.0)
	is.Equal(res["body"], map[string]any{"valid": false, "error": "License key is already used by the maximum number of instances (2)"})
	res = stornoClient(t, p, "MODE=validate", "LICENSE_KEY="+key, "FRONTEND_URL=https://app.example.com")
	is.Equal(res["status"], 200.0) // a seated site keeps validating

	status, _, _ = p.do(t, "DELETE", "/api/v1/licensing/keys/"+id+"/instances/"+url.PathEscape("https://factura.other.ro"), "token-owner-1", "")
	is.Equal(status, 200)
	res = stornoClient(t, p, "MODE=validate", "LICENSE_KEY="+key, "FRONTEND_URL=third.example.net")
	is.Equal(res["status"], 200.0) // the freed seat
	is.Equal(len(instances()), 2)
}
