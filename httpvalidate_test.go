package licensing_test

import (
	"math"
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
