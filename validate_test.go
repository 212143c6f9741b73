package licensing_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
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

const (
	keysPath     = "/api/v1/licensing/keys"
	validatePath = "/api/v1/licensing/validate"
)

func TestValidateSuccess(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, key := e.create(t, "t-owner", "prod")
	e.clock.Add(time.Hour)
	r := e.do(t, "POST", validatePath, "", validateBody(key,
		`"instanceName":"Production","instanceUrl":"https://factura.example.ro","metrics":{"companyCount":12,"userCount":3,"custom":1}`))
	is.Equal(r.status, 200)
	is.Equal(r.raw, `{"valid":true,"plan":"business","features":{"maxCompanies":10,"maxUsersPerOrg":10,"selfHostingLicense":true},`+
		`"organizationId":"org-1","organizationName":"SC Firma Mea SRL",`+
		`"violations":["companyCount is 12, above the business plan's limit of 10 (maxCompanies)."],`+
		`"currentPeriodEnd":"2026-03-20T00:00:00+00:00","billingUrl":"https://app.example.ro/settings/billing"}`+"\n")

	list := e.do(t, "GET", keysPath, "t-owner", "").body["keys"].([]any)[0].(map[string]any)
	is.Equal(list["id"], id)
	is.Equal(list["activatedAt"], "2026-02-20T11:30:00+00:00") // read your writes before the batch is flushed
	is.Equal(list["lastValidatedAt"], "2026-02-20T11:30:00+00:00")
	is.Equal(list["instanceUrl"], "https://factura.example.ro")
	is.Equal(list["instanceName"], "Production")
	is.Equal(list["instanceMetrics"], map[string]any{"companyCount": 12.0, "userCount": 3.0, "custom": 1.0})
	is.Equal(len(list["lastViolations"].([]any)), 1)

	e.clock.Add(time.Hour)
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 200)
	is.Equal(r.body["violations"], []any{}) // never null
	is.NoErr(e.svc.Flush(context.Background()))
	stored, err := e.store.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(stored[0].ActivatedAt, time.Date(2026, 2, 20, 11, 30, 0, 0, time.UTC))     // the first success only
	is.Equal(stored[0].LastValidatedAt, time.Date(2026, 2, 20, 12, 30, 0, 0, time.UTC)) // the latest
	is.Equal(stored[0].InstanceURL, "https://factura.example.ro")                       // kept when not sent again
	is.Equal(len(e.eventsOf(licensing.EventKeyValidated)), 2)
}

func TestValidateTrialAndPlanChange(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	_, key := e.create(t, "t-owner", "prod")
	trialEnd := e.clock.Now().Add(49 * time.Hour)
	e.orgs.update("org-1", func(o *licensing.Organization) {
		o.TrialEndsAt = trialEnd
		o.CurrentPeriodEnd = time.Time{}
		o.Plan = "pro"
		o.Features = map[string]any{"selfHostingLicense": true, "maxCompanies": 0.0}
	})
	r := e.do(t, "POST", validatePath, "", validateBody(key, `"metrics":{"companyCount":1000}`))
	is.Equal(r.status, 200)
	is.Equal(r.body["plan"], "pro") // the plan at the moment of the call
	is.Equal(r.body["trialEndsAt"], "2026-02-22T11:30:00+00:00")
	is.Equal(r.body["trialDaysLeft"], 3.0) // 49 hours is 3 days, rounded up
	_, has := r.body["currentPeriodEnd"]
	is.True(!has)                           // absent when the organization has none
	is.Equal(r.body["violations"], []any{}) // 0 means unlimited

	e.clock.Add(50 * time.Hour)
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	_, has = r.body["trialEndsAt"]
	is.True(!has) // only while the trial runs
	_, has = r.body["trialDaysLeft"]
	is.True(!has)
}

func TestValidateErrors(t *testing.T) {
	const billing = "https://app.example.ro/settings/billing"
	const invalid = `{"valid":false,"error":"Invalid or revoked license key"}` + "\n"
	const badURL = "instanceUrl must be an http or https URL, or a host name with an optional port and path, of at most 2048 characters"
	good, _ := wire.GenerateKey(nil)
	badSum := good[:63] + map[bool]string{true: "1", false: "0"}[good[63] == '0']
	tests := []struct {
		name   string
		setup  func(e *env, key string) string // returns the body to send
		status int
		body   string
	}{
		{"missing", func(e *env, key string) string { return `{}` }, 400, `{"error":"licenseKey is required"}`},
		{"empty body", func(e *env, key string) string { return `` }, 400, `{"error":"licenseKey is required"}`},
		{"empty", func(e *env, key string) string { return `{"licenseKey":""}` }, 400, `{"error":"licenseKey is required"}`},
		{"null", func(e *env, key string) string { return `{"licenseKey":null}` }, 400, `{"error":"licenseKey is required"}`},
		{"number", func(e *env, key string) string { return `{"licenseKey":42}` }, 400, `{"error":"licenseKey must be a string"}`},
		{"array", func(e *env, key string) string { return `{"licenseKey":["x"]}` }, 400, `{"error":"licenseKey must be a string"}`},
		{"malformed", func(e *env, key string) string { return validateBody("not-a-key", "") }, 401, invalid},
		{"bad checksum", func(e *env, key string) string { return validateBody(badSum, "") }, 401, invalid},
		{"unknown", func(e *env, key string) string { return validateBody(good, "") }, 401, invalid},
		{"revoked", func(e *env, key string) string {
			keys, _ := e.store.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
			e.store.RevokeKey(context.Background(), keys[0].ID, time.Now())
			return validateBody(key, "")
		}, 401, invalid},
		{"inactive organization", func(e *env, key string) string {
			e.orgs.update("org-1", func(o *licensing.Organization) { o.Active = false })
			return validateBody(key, "")
		}, 403, `{"valid":false,"error":"Organization is inactive"}`},
		{"plan not eligible", func(e *env, key string) string {
			e.orgs.update("org-1", func(o *licensing.Organization) {
				o.Plan, o.Features = "starter", map[string]any{"selfHostingLicense": false}
			})
			return validateBody(key, "")
		}, 403, `{"valid":false,"error":"` + "This organization's plan does not include self-hosted licenses; ask the organization owner to upgrade the plan in the billing settings." + `","plan":"starter","billingUrl":"` + billing + `"}`},
		{"instance url javascript", func(e *env, key string) string {
			return validateBody(key, `"instanceUrl":"javascript:alert(1)"`)
		}, 400, `{"error":"` + badURL + `"}`},
		{"instance url ftp", func(e *env, key string) string { return validateBody(key, `"instanceUrl":"ftp://x.example"`) }, 400,
			`{"error":"` + badURL + `"}`},
		{"instance url too long", func(e *env, key string) string {
			return validateBody(key, `"instanceUrl":"https://x.example/`+strings.Repeat("a", 2048)+`"`)
		}, 400, `{"error":"` + badURL + `"}`},
		{"negative metric", func(e *env, key string) string { return validateBody(key, `"metrics":{"userCount":-1}`) }, 400,
			`{"error":"metrics must be finite numbers, not negative"}`},
		{"bidi override in name", func(e *env, key string) string { return validateBody(key, `"instanceName":"prod\u202egnp.exe"`) }, 400,
			`{"error":"instanceName must be valid text of at most 255 characters without control or format characters"}`},
		{"metrics not an object", func(e *env, key string) string { return validateBody(key, `"metrics":[1]`) }, 400,
			`{"error":"metrics must be an object"}`},
		{"metric not a number", func(e *env, key string) string { return validateBody(key, `"metrics":{"userCount":"3"}`) }, 400,
			`{"error":"metrics values must be numbers"}`},
		{"too many metrics", func(e *env, key string) string {
			var m []string
			for i := 0; i < 33; i++ {
				m = append(m, fmt.Sprintf(`"m%d":1`, i))
			}
			return validateBody(key, `"metrics":{`+strings.Join(m, ",")+`}`)
		}, 400, `{"error":"metrics must have at most 32 entries"}`},
		{"metric name too long", func(e *env, key string) string {
			return validateBody(key, `"metrics":{"`+strings.Repeat("m", 65)+`":1}`)
		}, 400, `{"error":"metric names must be 1 to 64 characters without control or format characters"}`},
		{"instance id with spaces", func(e *env, key string) string { return validateBody(key, `"instanceId":"a b"`) }, 400,
			`{"error":"instanceId must be at most 128 printable ASCII characters without spaces, other than . and .."}`},
		{"not json", func(e *env, key string) string { return "licenseKey=" + key }, 400,
			`{"error":"Malformed JSON body."}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			_, key := e.create(t, "t-owner", "prod")
			body := tc.setup(e, key)
			hdr := []string{}
			if tc.name == "not json" {
				hdr = []string{"Content-Type", "application/x-www-form-urlencoded"} // what curl -d declares
			}
			r := e.do(t, "POST", validatePath, "", body, hdr...)
			is.Equal(r.status, tc.status)
			is.Equal(r.raw, tc.body+map[bool]string{true: "", false: "\n"}[strings.HasSuffix(tc.body, "\n")]) // exact body
		})
	}
}

// countingStore counts the store reads validation makes.
type countingStore struct {
	*licensing.MemoryStore
	reads atomic.Int64
}

func (c *countingStore) KeyByLookup(ctx context.Context, lookup string) (licensing.Key, error) {
	c.reads.Add(1)
	return c.MemoryStore.KeyByLookup(ctx, lookup)
}

func (c *countingStore) KeyByID(ctx context.Context, id string) (licensing.Key, error) {
	c.reads.Add(1)
	return c.MemoryStore.KeyByID(ctx, id)
}

var _ licensing.Store = (*countingStore)(nil)

// countingHasher counts the hashing work of each validation.
type countingHasher struct {
	licensing.Hasher
	lookups, verifies atomic.Int64
}

func (c *countingHasher) LookupValue(key string) string {
	c.lookups.Add(1)
	return c.Hasher.LookupValue(key)
}

func (c *countingHasher) Verify(key, digest string) bool {
	c.verifies.Add(1)
	return c.Hasher.Verify(key, digest)
}

func TestValidateFailuresTakeOnePath(t *testing.T) {
	is := is.New(t)
	cs := &countingStore{MemoryStore: licensing.NewMemoryStore()}
	hmac, err := licensing.NewHMACHasher(testPepper)
	is.NoErr(err)
	ch := &countingHasher{Hasher: hmac}
	release := make(chan struct{})
	e := newEnv(t, func(c *licensing.Config) {
		c.Store, c.Hasher = cs, ch
		on := c.OnEvent
		c.OnEvent = func(ctx context.Context, ev licensing.Event) {
			if ev.Type == licensing.EventValidationFailed {
				<-release // a slow event handler: answers must not wait for it
			}
			on(ctx, ev)
		}
	})
	_, revoked := e.create(t, "t-owner", "prod")
	id, _ := e.create(t, "t-owner", "other")
	_ = id
	keys, _ := cs.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
	for _, k := range keys {
		if k.InstanceName == "prod" {
			_, err := cs.RevokeKey(context.Background(), k.ID, time.Now())
			is.NoErr(err)
		}
	}
	unknown, _ := wire.GenerateKey(nil)
	badChecksum := unknown[:56] + "00000000"
	if badChecksum == unknown {
		badChecksum = unknown[:56] + "11111111"
	}
	for _, tc := range []struct{ name, key string }{{"unknown", unknown}, {"bad checksum", badChecksum}, {"revoked", revoked}} {
		reads, lookups, verifies := cs.reads.Load(), ch.lookups.Load(), ch.verifies.Load()
		r := e.do(t, "POST", validatePath, "", validateBody(tc.key, ""))
		is.Equal(r.status, 401)
		is.Equal(r.raw, `{"valid":false,"error":"Invalid or revoked license key"}`+"\n") // one answer for all
		is.Equal(cs.reads.Load()-reads, int64(1))                                        // one store lookup, whatever the key
		is.Equal(ch.lookups.Load()-lookups, int64(1))                                    // one lookup value
		is.Equal(ch.verifies.Load()-verifies, int64(1))                                  // one verification, against a dummy digest on a miss
	}
	reads := cs.reads.Load()
	for _, k := range []string{"short", strings.Repeat("z", 64), unknown[:63]} {
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(k, "")).status, 401)
	}
	is.Equal(cs.reads.Load(), reads) // what is not 64 hex characters never reaches the store
	close(release)
	failed := e.eventsOf(licensing.EventValidationFailed)
	var reasons []licensing.Outcome
	for _, ev := range failed {
		reasons = append(reasons, ev.Outcome)
	}
	is.Equal(reasons, []licensing.Outcome{licensing.OutcomeUnknown, licensing.OutcomeMalformed, licensing.OutcomeRevoked,
		licensing.OutcomeMalformed, licensing.OutcomeMalformed, licensing.OutcomeMalformed}) // events still arrive, in order, after the answers
}
