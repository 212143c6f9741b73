package licensing_test

import (
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestNoBillingURLConfigured: without Policy.BillingURL the validate answers
// (200, and the 403 of a plan that is not eligible) carry no billingUrl at
// all, so a client's own fallback applies (Storno's `?? $default` does not
// replace an empty string).
func TestNoBillingURLConfigured(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.Policy.BillingURL = "" })
	_, key := e.create(t, "t-owner", "prod")
	r := e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 200)
	_, present := r.body["billingUrl"]
	is.True(!present)
	e.orgs.update("org-1", func(o *licensing.Organization) { o.Features = map[string]any{"selfHostingLicense": false} })
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 403)
	is.Equal(r.body["plan"], "business")
	_, present = r.body["billingUrl"]
	is.True(!present)
}
