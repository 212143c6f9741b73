package apitest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"
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
		created = `{"id":"019c8a12-4567-7abc-8ef0-123456789abc","licenseKey":"96879611650f80a81392a52e0db9b0237669087c4518e1c130e541a5b11ca0de","instanceName":null,"active":true,"createdAt":"2026-02-20T10:30:00+00:00"}`
		listed  = `{"id":"019c8a12-4567-7abc-8ef0-123456789abc","licenseKey":"96879611...b11ca0de","instanceName":null,"instanceUrl":null,"active":true,"lastValidatedAt":null,"activatedAt":null,"createdAt":"2026-02-20T10:30:00+00:00","instanceMetrics":null,"lastViolations":null}`
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
		{"a conforming list passes", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore, `{"keys":[` + listed + `]}`, false},
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
			`{"keys":[` + strings.Replace(listed, "96879611...b11ca0de", "96879611650f80a81392a52e0db9b0237669087c4518e1c130e541a5b11ca0de", 1) + `]}`, true},
		{"a list with keys null", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore, `{"keys":null}`, true},
		{"a list with an extra field", "GET", "/api/v1/licensing/keys", "/api/v1/licensing/keys", 200, noStore,
			`{"keys":[` + strings.Replace(listed, `"active":true`, `"active":true,"digest":"abc"`, 1) + `]}`, true},
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
			map[string]string{"Content-Type": "application/json", "Cache-Control": "public, max-age=300"}, `{"keys":[]}`, true},
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
