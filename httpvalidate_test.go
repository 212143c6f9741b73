package licensing_test

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestValidateAnswerThatCannotBeEncoded: a plan feature JSON cannot carry
// (NaN) gives the same 500 as any other answer that fails to encode, never
// a truncated body.
func TestValidateAnswerThatCannotBeEncoded(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	_, key := e.create(t, "t-owner", "prod")
	e.orgs.update("org-1", func(o *licensing.Organization) {
		o.Features = map[string]any{"selfHostingLicense": true, "maxCompanies": math.NaN()}
	})
	r := e.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(r.status, 500)
	is.Equal(r.body["error"], "Internal error.")
	is.True(!strings.Contains(r.raw, "valid"))
}

// An answer that cannot be encoded (a plan feature of +Inf, which JSON has
// no number for) is a 500 on the one error path: signed and echoing the
// nonce like every validate answer to a request with one.
func TestValidateUnencodableAnswerIsASignedError(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	_, key := e.create(t, "t-owner", "prod")
	e.orgs.mu.Lock()
	org := e.orgs.m["org-1"]
	org.Features = map[string]any{"selfHostingLicense": true, "maxCompanies": math.Inf(1)}
	e.orgs.m["org-1"] = org
	e.orgs.mu.Unlock()
	r := e.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`","nonce":"n-1"}`)
	is.Equal(r.status, 500)
	is.Equal(r.body["error"], "Internal error.")
	is.Equal(r.body["nonce"], "n-1")                       // the nonce is echoed
	is.True(r.header.Get(licensing.SignatureHeader) != "") // and the answer signed
	is.Equal(r.header.Get("Cache-Control"), "no-store")
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
