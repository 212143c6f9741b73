package licensing_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

const (
	keysPath     = "/api/v1/licensing/keys"
	validatePath = "/api/v1/licensing/validate"
)

func validateBody(key string, extra string) string {
	b := `{"licenseKey":` + jsonString(key)
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

func TestListKeys(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	r := e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 200)
	is.Equal(r.raw, `{"organizationId":"org-1","organizationName":"SC Firma Mea SRL","keys":[]}`+"\n") // empty organization, named

	id1, k1 := e.create(t, "t-owner", "First")
	e.clock.Add(time.Minute)
	id2, k2 := e.create(t, "t-owner", "Second")
	r = e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 200)
	is.Equal(r.header.Get("Cache-Control"), "no-store")
	keys := r.body["keys"].([]any)
	is.Equal(len(keys), 2)
	first, second := keys[0].(map[string]any), keys[1].(map[string]any)
	is.Equal(first["id"], id2) // newest first
	is.Equal(second["id"], id1)
	is.Equal(first["licenseKey"], k2[:8]+"..."+k2[56:]) // masked
	is.Equal(second["licenseKey"], k1[:8]+"..."+k1[56:])
	is.Equal(keysOf(first), []string{"activatedAt", "active", "createdAt", "expiresAt", "id", "instanceMetrics", "instanceName",
		"instanceUrl", "lastValidatedAt", "lastViolations", "licenseKey", "rotatedFrom", "rotatedTo"})
	is.Equal(first["expiresAt"], nil)   // never expires
	is.Equal(first["rotatedTo"], nil)   // not rotated
	is.Equal(first["rotatedFrom"], nil) // not a rotation's new key
	is.Equal(first["instanceUrl"], nil)
	is.Equal(first["lastValidatedAt"], nil)
	is.Equal(first["activatedAt"], nil)
	is.Equal(first["createdAt"], "2026-02-20T10:31:00+00:00")
	is.True(!strings.Contains(r.raw, k1) && !strings.Contains(r.raw, k2)) // no full key in a list

	r = e.do(t, "GET", keysPath, "t-member", "")
	is.Equal(r.status, 403) // members cannot list
}

func TestRevokeKey(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, key := e.create(t, "t-owner", "prod")
	r := e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 200)

	for _, path := range []string{keysPath + "/not-a-uuid", keysPath + "/019c8a12-4567-7abc-8ef0-123456789abc",
		keysPath + "/urn:uuid:" + id} {
		r = e.do(t, "DELETE", path, "t-owner", "")
		is.Equal(r.status, 404)
		is.Equal(r.raw, `{"error":"License key not found"}`+"\n") // one answer for every miss
	}
	// another organization's owner gets the same 404, even with a valid id
	e.orgs.update("org-2", func(o *licensing.Organization) { o.Features = map[string]any{"selfHostingLicense": true} })
	r = e.do(t, "DELETE", keysPath+"/"+id, "t-other", "")
	is.Equal(r.status, 404)
	is.Equal(r.raw, `{"error":"License key not found"}`+"\n")

	r = e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "")
	is.Equal(r.status, 200)
	is.Equal(r.raw, `{"status":"revoked"}`+"\n")
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 401) // a revoked key fails at once
	r = e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "")
	is.Equal(r.status, 200) // idempotent
	is.Equal(len(e.eventsOf(licensing.EventKeyRevoked)), 1)

	r = e.do(t, "GET", keysPath, "t-owner", "")
	k := r.body["keys"].([]any)[0].(map[string]any)
	is.Equal(k["active"], false) // soft delete: listed, inactive
}

func TestOwnerCanListAndRevokeAfterDowngrade(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, _ := e.create(t, "t-owner", "prod")
	e.orgs.update("org-1", func(o *licensing.Organization) {
		o.Active = false
		o.Plan, o.Features = "free", map[string]any{}
	})
	is.Equal(e.do(t, "GET", keysPath, "t-owner", "").status, 200)
	is.Equal(e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "").status, 200)
	is.Equal(e.do(t, "POST", keysPath, "t-owner", "").status, 403) // but no new credential
}

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
			`{"error":"instanceId must be at most 128 printable ASCII characters without spaces"}`},
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

func TestKeySharedByInstances(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	_, key := e.create(t, "t-owner", "prod")
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a"`)).status, 200)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a"`)).status, 200)
	is.Equal(len(e.eventsOf(licensing.EventKeyShared)), 0) // one instance is not sharing
	r := e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-b"`))
	is.Equal(r.status, 200) // sharing does not fail validation
	shared := e.eventsOf(licensing.EventKeyShared)
	is.Equal(len(shared), 1)
	is.Equal(shared[0].InstanceCount, 2)
	is.Equal(shared[0].MaskedKey, wire.MaskKey(key))
	list := e.do(t, "GET", keysPath, "t-owner", "").body["keys"].([]any)[0].(map[string]any)
	is.Equal(list["lastViolations"], []any{"This license key is shared by 2 instances within one day."})

	e.clock.Add(25 * time.Hour) // inst-a falls out of the window
	e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-b"`))
	list = e.do(t, "GET", keysPath, "t-owner", "").body["keys"].([]any)[0].(map[string]any)
	is.Equal(list["lastViolations"], []any{})
}

func TestRateLimit(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) {
		c.RateLimit, c.RateBurst = 60, 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	_, key := e.create(t, "t-owner", "prod")
	for i := 0; i < 3; i++ {
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "203.0.113.7").status, 200)
	}
	r := e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "203.0.113.7")
	is.Equal(r.status, 429) // past the burst
	is.Equal(r.raw, `{"error":"Too many requests."}`+"\n")
	is.Equal(r.header.Get("Retry-After"), "1")                                                                        // one token a second
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "198.51.100.1").status, 200) // another address is served
	// a spoofed hop left of the real client does not help
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "10.9.9.9, 203.0.113.7").status, 429)
	e.clock.Add(time.Second)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "203.0.113.7").status, 200) // refilled
}

func TestRateLimitIgnoresForwardedForFromUntrustedPeers(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit, c.RateBurst = 60, 2 })
	for i := 0; i < 2; i++ {
		e.do(t, "POST", validatePath, "", `{}`, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
	}
	r := e.do(t, "POST", validatePath, "", `{}`, "X-Forwarded-For", "203.0.113.99")
	is.Equal(r.status, 429) // the peer is counted, whatever the header says
}

func TestRevokeRacesValidation(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, key := e.create(t, "t-owner", "prod")
	ctx := context.Background()
	actor := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	var revoked atomic.Bool
	var lateSuccesses, successes atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := revoked.Load() // read before the call starts
				_, err := e.svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: key})
				if err == nil {
					successes.Add(1)
					if after {
						lateSuccesses.Add(1)
					}
				}
			}
		}()
	}
	for successes.Load() < 100 {
		time.Sleep(time.Millisecond)
	}
	is.NoErr(e.svc.RevokeKey(ctx, actor, id))
	revoked.Store(true)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	is.Equal(lateSuccesses.Load(), int64(0)) // after the revoke returns, no validation succeeds
}

func TestOwnerRateLimit(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.OwnerRateLimit = 20 }) // burst 5
	for i := 0; i < 5; i++ {
		is.Equal(e.do(t, "GET", keysPath, "t-owner", "").status, 200)
	}
	r := e.do(t, "POST", keysPath, "t-owner", `{}`)
	is.Equal(r.status, 429) // the sixth owner request within the burst
	is.Equal(r.raw, `{"error":"Too many requests."}`+"\n")
	is.Equal(r.header.Get("Retry-After"), "3")                    // 20 a minute: one every 3 s
	is.Equal(e.count(t), 0)                                       // nothing created
	is.Equal(e.do(t, "GET", keysPath, "t-other", "").status, 200) // another owner has a bucket of their own
	is.Equal(e.do(t, "GET", keysPath, "", "").status, 401)        // unauthenticated requests are not counted against anyone
	e.clock.Add(3 * time.Second)
	is.Equal(e.do(t, "POST", keysPath, "t-owner", `{}`).status, 201) // a token again
}
