package apitest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"
	"github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi/datamodel/high/base"
)

// findOp returns the document's operation for method and path template.
func findOp(t *testing.T, method, path string) operation {
	t.Helper()
	for _, op := range doc.operations() {
		if op.method == method && op.path == path {
			return op
		}
	}
	t.Fatalf("%s %s is not in the document", method, path)
	return operation{}
}

// TestChecksCatch feeds the checks answers that break the contract, from a
// fake server, and expects each to be caught: the checks can fail.
func TestChecksCatch(t *testing.T) {
	is := is.New(t)
	const (
		created = `{"id":"019c8a12-4567-7abc-8ef0-123456789abc","licenseKey":"96879611650f80a81392a52e0db9b0237669087c4518e1c130e541a5b11ca0de","instanceName":null,"active":true,"createdAt":"2026-02-20T10:30:00+00:00","expiresAt":null,"maxInstances":null}`
		listed  = `{"id":"019c8a12-4567-7abc-8ef0-123456789abc","licenseKey":"96879611...b11ca0de","instanceName":null,"instanceUrl":null,"active":true,"lastValidatedAt":null,"activatedAt":null,"createdAt":"2026-02-20T10:30:00+00:00","instanceMetrics":null,"lastViolations":null,"expiresAt":null,"rotatedTo":null,"rotatedFrom":null,"maxInstances":null}`
	)
	json := map[string]string{"Content-Type": "application/json"}
	noStore := map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}
	tests := []struct {
		name         string
		method, path string // the document's operation
		send         string // the concrete path sent
		status       int
		header       map[string]string
		body         string
		caught       bool
	}{
		{"a conforming create passes", "POST", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 201, noStore, created, false},
		{"a conforming list passes", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore, `{"organizationId":"org-acme","organizationName":"SC Firma Mea SRL","keys":[` + listed + `]}`, false},
		{"create without Cache-Control", "POST", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 201, json, created, true},
		{"create with Cache-Control public", "POST", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 201,
			map[string]string{"Content-Type": "application/json", "Cache-Control": "public"}, created, true},
		{"create with a Z time", "POST", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 201, noStore,
			strings.Replace(created, "+00:00", "Z", 1), true},
		{"create with fractional seconds", "POST", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 201, noStore,
			strings.Replace(created, ":00+00:00", ":00.123+00:00", 1), true},
		{"create with an upper-case key", "POST", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 201, noStore,
			strings.Replace(created, "96879611", "9687961A", 1), true},
		{"an undocumented status", "POST", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 415, json, `{"error":"x"}`, true},
		{"a list that shows a full key", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore,
			`{"organizationId":"org-acme","organizationName":"SC Firma Mea SRL","keys":[` + strings.Replace(listed, "96879611...b11ca0de", "96879611650f80a81392a52e0db9b0237669087c4518e1c130e541a5b11ca0de", 1) + `]}`, true},
		{"a list with a Z expiry", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore,
			`{"organizationId":"org-acme","organizationName":"SC Firma Mea SRL","keys":[` + strings.Replace(listed, `"expiresAt":null`, `"expiresAt":"2027-01-01T00:00:00Z"`, 1) + `]}`, true},
		{"a list with rotatedTo not an id", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore,
			`{"organizationId":"org-acme","organizationName":"SC Firma Mea SRL","keys":[` + strings.Replace(listed, `"rotatedTo":null`, `"rotatedTo":"x"`, 1) + `]}`, true},
		{"a list without rotatedFrom", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore,
			`{"organizationId":"org-acme","organizationName":"SC Firma Mea SRL","keys":[` + strings.Replace(listed, `,"rotatedFrom":null`, ``, 1) + `]}`, true},
		{"a list with maxInstances 0", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore,
			`{"organizationId":"org-acme","organizationName":"SC Firma Mea SRL","keys":[` + strings.Replace(listed, `"maxInstances":null`, `"maxInstances":0`, 1) + `]}`, true},
		{"a conforming instance list passes", "GET", "/api/v1/licensing/keys/{id}/instances", "/api/v1/licensing/keys/019c8a12-4567-7abc-8ef0-123456789abc/instances", 200, noStore,
			`{"instances":[{"id":"https://a.example","instanceName":null,"instanceUrl":"a.example","firstSeenAt":"2026-02-20T10:30:00+00:00","lastSeenAt":"2026-02-20T10:30:00+00:00","metrics":null}]}`, false},
		{"an instance list without lastSeenAt", "GET", "/api/v1/licensing/keys/{id}/instances", "/api/v1/licensing/keys/019c8a12-4567-7abc-8ef0-123456789abc/instances", 200, noStore,
			`{"instances":[{"id":"https://a.example","instanceName":null,"instanceUrl":"a.example","firstSeenAt":"2026-02-20T10:30:00+00:00","metrics":null}]}`, true},
		{"a list with keys null", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore, `{"organizationId":"org-acme","organizationName":"SC Firma Mea SRL","keys":null}`, true},
		{"a list with an extra field", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore,
			`{"organizationId":"org-acme","organizationName":"SC Firma Mea SRL","keys":[` + strings.Replace(listed, `"active":true`, `"active":true,"digest":"abc"`, 1) + `]}`, true},
		{"401 without WWW-Authenticate", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 401, json,
			`{"error":"Missing or invalid token."}`, true},
		{"403 with another text", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 403, json,
			`{"error":"Only the organization owner can manage license keys."}`, true},
		{"validate 401 without valid", "POST", "/api/v1/licensing/validate", "/api/v1/licensing/validate", 401, noStore,
			`{"error":"Invalid or revoked license key"}`, true},
		{"validate 401 telling revoked apart", "POST", "/api/v1/licensing/validate", "/api/v1/licensing/validate", 401, noStore,
			`{"valid":false,"error":"License key is revoked"}`, true},
		{"429 without Retry-After", "POST", "/api/v1/licensing/validate", "/api/v1/licensing/validate", 429, json,
			`{"error":"Too many requests."}`, true},
		{"an empty JWKS", "GET", "/api/v1/licensing/public-keys", "/api/v1/licensing/public-keys", 200,
			map[string]string{"Content-Type": "application/json", "Cache-Control": "public, max-age=300"}, `{"organizationId":"org-acme","organizationName":"SC Firma Mea SRL","keys":[]}`, true},
		{"PEM as JSON", "GET", "/api/v1/licensing/public-keys.pem", "/api/v1/licensing/public-keys.pem", 200, json, `"x"`, true},
		{"PEM with a comment", "GET", "/api/v1/licensing/public-keys.pem", "/api/v1/licensing/public-keys.pem", 200,
			map[string]string{"Content-Type": "application/x-pem-file"},
			"# rsa\n-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n", true},
		{"405 without Allow", "GET", "/api/v1/licensing/public-keys", "/api/v1/licensing/public-keys", 405, json,
			`{"error":"Method not allowed."}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer fake.Close()
			op := findOp(t, tc.method, tc.path)
			method := tc.method
			if tc.status == http.StatusMethodNotAllowed {
				method = http.MethodPut // a method the path does not list
			}
			a, err := request{method: method, path: tc.send, header: http.Header{},
				server: &server{url: fake.URL}}.send()
			is.NoErr(err)
			probs := conforms(op, a)
			if tc.status == http.StatusOK && strings.HasSuffix(tc.path, ".pem") {
				probs = append(probs, checkPEM(primary, a.body)...)
			}
			if caught := len(probs) > 0; caught != tc.caught {
				t.Errorf("caught %v, want %v; problems: %v", caught, tc.caught, probs)
			}
		})
	}
	is.True(len(tests) > 0)
}

// TestTextChecksCatch feeds the exact-text checks answers whose texts or
// values drift from the document, and expects each drift to be caught.
func TestTextChecksCatch(t *testing.T) {
	is := is.New(t)
	tests := []struct {
		name     string
		example  string // the documented example value, YAML
		answered string // the answer's body
		caught   bool
	}{
		{"the same error text passes", `{error: Permission denied}`, `{"error":"Permission denied"}`, false},
		{"an error text without its final period", `{error: Not found.}`, `{"error":"Not found"}`, true},
		{"an error text with another wording", `{error: cursor is invalid}`, `{"error":"cursor is not one this server made"}`, true},
		{"an error text that differs in case", `{error: Permission denied}`, `{"error":"Permission Denied"}`, true},
		{"an error text with trailing space", `{error: Permission denied}`, `{"error":"Permission denied "}`, true},
		{"a missing error", `{error: Permission denied}`, `{"message":"Permission denied"}`, true},
		{"valid true for false", `{valid: false, error: x}`, `{"valid":true,"error":"x"}`, true},
		{"valid as a string", `{valid: false, error: x}`, `{"valid":"false","error":"x"}`, true},
		{"status and reason", `{status: not ready, reason: shutting down}`, `{"status":"not ready","reason":"shutting down"}`, false},
		{"another reason", `{status: not ready, reason: shutting down}`, `{"status":"not ready","reason":"store failed"}`, true},
		{"null for a string", `{instanceName: Production Server}`, `{"instanceName":null}`, true},
		{"a string for null", `{instanceName: null}`, `{"instanceName":"x"}`, true},
		{"values the server makes may differ", `{id: 019c8a12-4567-7abc-8ef0-123456789abc, licenseKey: k, createdAt: t, active: true}`,
			`{"id":"x","licenseKey":"y","createdAt":"z","active":true}`, false},
		{"arrays are left to match", `{violations: [a]}`, `{"violations":[]}`, false},
		{"a number the same", `{trialDaysLeft: 3}`, `{"trialDaysLeft":3.0}`, false},
		{"an answer that is not JSON", `{error: x}`, `x`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			var n yaml.Node
			is.NoErr(yaml.Unmarshal([]byte(tc.example), &n))
			probs := sameScalars(example{response: &base.Example{Value: n.Content[0]}}, []byte(tc.answered))
			if caught := len(probs) > 0; caught != tc.caught {
				t.Errorf("caught %v, want %v; problems: %v", caught, tc.caught, probs)
			}
		})
	}
	is.True(len(tests) > 0)
}

// TestOtherMethodChecksCatch feeds the checks of a method a path does not
// list answers that break its x-other-methods response: another status,
// another text, no Allow.
func TestOtherMethodChecksCatch(t *testing.T) {
	is := is.New(t)
	tests := []struct {
		name   string
		path   string // of a GET operation
		status int
		allow  string
		body   string
		caught bool
	}{
		{"a conforming 405 passes", "/api/v1/licensing/public-keys", 405, "GET, HEAD", `{"error":"Method not allowed; use GET, HEAD."}`, false},
		{"a 405 without its period", "/api/v1/licensing/public-keys", 405, "GET, HEAD", `{"error":"Method not allowed; use GET, HEAD"}`, true},
		{"a 405 naming other methods", "/api/v1/licensing/public-keys", 405, "GET, HEAD", `{"error":"Method not allowed; use GET."}`, true},
		{"a 405 without a text", "/api/v1/licensing/public-keys", 405, "GET, HEAD", `{}`, true},
		{"a 405 without Allow", "/api/v1/licensing/public-keys", 405, "", `{"error":"Method not allowed; use GET, HEAD."}`, true},
		{"a 404 for another method", "/api/v1/licensing/public-keys", 404, "", `{"error":"Method not allowed; use GET, HEAD."}`, true},
		{"a 200 for another method", "/api/v1/licensing/public-keys", 200, "GET, HEAD", `{"error":"Method not allowed; use GET, HEAD."}`, true},
		{"a conforming server route 405 passes", "/healthz", 405, "GET, HEAD", `{"error":"Method not allowed; use GET."}`, false},
		{"a server route 405 in the handler's words", "/healthz", 405, "GET, HEAD", `{"error":"Method not allowed; use GET, HEAD."}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if tc.allow != "" {
					w.Header().Set("Allow", tc.allow)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer fake.Close()
			a, err := request{method: http.MethodOptions, path: tc.path, header: http.Header{},
				server: &server{url: fake.URL}}.send()
			is.NoErr(err)
			probs := conforms(findOp(t, http.MethodGet, tc.path), a)
			if caught := len(probs) > 0; caught != tc.caught {
				t.Errorf("caught %v, want %v; problems: %v", caught, tc.caught, probs)
			}
		})
	}
	is.True(len(tests) > 0)
}
