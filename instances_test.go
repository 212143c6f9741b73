package licensing_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

// instancesPath is the instance list of key id; with instance, that one
// instance (path-escaped).
func instancesPath(id string, instance ...string) string {
	p := keysPath + "/" + id + "/instances"
	for _, in := range instance {
		p += "/" + url.PathEscape(in)
	}
	return p
}

// TestKeySharedByInstances: a key validated by a second instance within
// the instance lease says so in its violations and sends key.shared once;
// an instance that stops validating frees its seat when its lease runs out.
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
	is.Equal(shared[0].InstanceID, "inst-b")
	is.Equal(shared[0].MaskedKey, wire.MaskKey(key))
	list := e.do(t, "GET", keysPath, "t-owner", "").body["keys"].([]any)[0].(map[string]any)
	is.Equal(list["lastViolations"], []any{"This license key is shared by 2 instances within 3 days."}) // the default lease, 72 hours

	e.clock.Add(71 * time.Hour) // inst-a is still within its lease
	e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-b"`))
	list = e.do(t, "GET", keysPath, "t-owner", "").body["keys"].([]any)[0].(map[string]any)
	is.Equal(list["lastViolations"], []any{"This license key is shared by 2 instances within 3 days."})
	e.clock.Add(2 * time.Hour) // inst-a's lease has run out
	e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-b"`))
	list = e.do(t, "GET", keysPath, "t-owner", "").body["keys"].([]any)[0].(map[string]any)
	is.Equal(list["lastViolations"], []any{})
	is.Equal(len(e.eventsOf(licensing.EventKeyShared)), 1) // a known instance is not told again
}

// TestKeySharingSeenByEveryService: two Services on one store (two
// servers) see the same instances: each sees the other's.
func TestKeySharingSeenByEveryService(t *testing.T) {
	is := is.New(t)
	a := newEnv(t, nil)
	_, key := a.create(t, "t-owner", "prod")
	other, err := licensing.New(licensing.Config{Store: a.store, Organizations: a.orgs, Pepper: testPepper,
		Policy: licensing.Policy{Issuer: "licensing.test"}, Now: a.clock.Now})
	is.NoErr(err)
	defer other.Close(context.Background())
	_, err = a.svc.ValidateKey(context.Background(), licensing.ValidateInput{LicenseKey: key, InstanceID: "inst-a"})
	is.NoErr(err)
	res, err := other.ValidateKey(context.Background(), licensing.ValidateInput{LicenseKey: key, InstanceID: "inst-b"})
	is.NoErr(err)
	is.Equal(res.Violations, []string{}) // the instance's answer: the plan's violations only
	is.NoErr(other.Flush(context.Background()))
	keys, err := a.store.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(keys[0].LastViolations, []string{"This license key is shared by 2 instances within 3 days."}) // counted across services
}

// TestInstanceCountedByURL: an instance that sends no instanceId (the seed
// system's client) is counted by its instanceUrl, normalized, so that one
// site spelled two ways is one instance and two sites are two.
func TestInstanceCountedByURL(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	id, key := e.create(t, "t-owner", "prod")
	for _, u := range []string{"https://Storno.Example.com/", "https://storno.example.com:443", "storno.example.com", "HTTPS://STORNO.EXAMPLE.COM//"} {
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceUrl":`+jsonString(u))).status, 200)
	}
	r := e.do(t, "GET", instancesPath(id), "t-owner", "")
	is.Equal(r.status, 200)
	list := r.body["instances"].([]any)
	is.Equal(len(list), 1) // four spellings of one site
	is.Equal(list[0].(map[string]any)["id"], "https://storno.example.com")
	is.Equal(list[0].(map[string]any)["instanceUrl"], "HTTPS://STORNO.EXAMPLE.COM//") // the URL as last sent
	is.Equal(len(e.eventsOf(licensing.EventKeyShared)), 0)

	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceUrl":"http://storno.example.com"`)).status, 200)
	is.Equal(len(e.do(t, "GET", instancesPath(id), "t-owner", "").body["instances"].([]any)), 2) // another scheme is another site
	is.Equal(len(e.eventsOf(licensing.EventKeyShared)), 1)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, "")).status, 200) // neither id nor URL: not counted
	is.Equal(len(e.do(t, "GET", instancesPath(id), "t-owner", "").body["instances"].([]any)), 2)
}

// TestSeatLimit: a key with maxInstances lets that many instances hold a
// seat; a new one beyond it gets 403 with the limit, the seated ones keep
// validating, and freeing a seat (the owner, or the lease running out)
// lets the new one in.
func TestSeatLimit(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	r := e.do(t, "POST", keysPath, "t-owner", `{"instanceName":"prod","maxInstances":2}`)
	is.Equal(r.status, 201)
	is.Equal(r.body["maxInstances"], 2.0)
	id, key := r.body["id"].(string), r.body["licenseKey"].(string)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a"`)).status, 200)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceUrl":"https://b.example"`)).status, 200)

	refused := e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-c"`))
	is.Equal(refused.status, 403)
	is.Equal(refused.raw, `{"valid":false,"error":"License key is already used by the maximum number of instances (2)"}`+"\n")
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a"`)).status, 200)              // seated instances are unaffected
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceUrl":"https://B.example/"`)).status, 200) // the same site
	limits := e.eventsOf(licensing.EventSeatLimitReached)
	is.Equal(len(limits), 1)
	is.Equal(limits[0].InstanceID, "inst-c")
	is.Equal(limits[0].MaxInstances, 2)
	is.Equal(limits[0].KeyID, id)
	failed := e.eventsOf(licensing.EventValidationFailed)
	is.Equal(len(failed), 1)
	is.Equal(failed[0].Outcome, licensing.OutcomeSeatLimit)

	rel := e.do(t, "DELETE", instancesPath(id, "https://b.example"), "t-owner", "")
	is.Equal(rel.status, 200)
	is.Equal(rel.raw, `{"status":"released"}`+"\n")
	released := e.eventsOf(licensing.EventInstanceReleased)
	is.Equal(len(released), 1)
	is.Equal(released[0].InstanceID, "https://b.example")
	is.Equal(released[0].UserID, "user-1")
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-c"`)).status, 200) // the freed seat is taken
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceUrl":"https://b.example"`)).status, 403)

	e.clock.Add(licensing.DefaultInstanceLease) // every lease runs out
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceUrl":"https://b.example"`)).status, 200)
}

// TestSeatLimitFromPlanAndPatch: a key without maxInstances takes the
// plan's maxInstancesPerKey; PATCH sets the key's own, which wins, and
// null gives the plan's back. Lowering the limit frees no seat.
func TestSeatLimitFromPlanAndPatch(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	e.orgs.update("org-1", func(o *licensing.Organization) {
		o.Features = map[string]any{"selfHostingLicense": true, "maxInstancesPerKey": 1.0}
	})
	id, key := e.create(t, "t-owner", "prod")
	is.Equal(e.listed(t, id)["maxInstances"], nil) // none of its own
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a"`)).status, 200)
	r := e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-b"`))
	is.Equal(r.status, 403)
	is.Equal(r.body["error"], "License key is already used by the maximum number of instances (1)") // the plan's limit

	p := e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"maxInstances":3}`)
	is.Equal(p.status, 200)
	is.Equal(p.body["maxInstances"], 3.0)
	is.Equal(p.body["id"], id)
	is.Equal(e.listed(t, id)["maxInstances"], 3.0)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-b"`)).status, 200)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-c"`)).status, 200)

	p = e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"maxInstances":null}`)
	is.Equal(p.status, 200)
	is.Equal(p.body["maxInstances"], nil)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a"`)).status, 200) // lowering frees no seat
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-d"`)).status, 403)
	is.Equal(len(e.do(t, "GET", instancesPath(id), "t-owner", "").body["instances"].([]any)), 3)
}

// TestKeyInstancesRoute: the list's shape, most recently seen first, and
// the owner checks of both instance routes.
func TestKeyInstancesRoute(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, key := e.create(t, "t-owner", "prod")
	is.Equal(e.do(t, "GET", instancesPath(id), "t-owner", "").raw, `{"instances":[]}`+"\n")
	first := e.clock.Now()
	e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a","instanceName":"Storno A","instanceUrl":"https://a.example","metrics":{"companyCount":2}`))
	e.clock.Add(time.Minute)
	e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-b"`))
	e.clock.Add(time.Minute)
	e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a","metrics":{"companyCount":3}`))
	r := e.do(t, "GET", instancesPath(id), "t-owner", "")
	is.Equal(r.status, 200)
	is.Equal(r.header.Get("Cache-Control"), "no-store")
	list := r.body["instances"].([]any)
	is.Equal(len(list), 2)
	a, b := list[0].(map[string]any), list[1].(map[string]any)
	is.Equal(a, map[string]any{"id": "inst-a", "instanceName": "Storno A", "instanceUrl": "https://a.example",
		"firstSeenAt": first.UTC().Format(wire.TimeLayout), "lastSeenAt": first.Add(2 * time.Minute).UTC().Format(wire.TimeLayout),
		"metrics": map[string]any{"companyCount": 3.0}}) // most recently seen first, with its last metrics
	is.Equal(b["id"], "inst-b")
	is.Equal(b["instanceName"], nil)
	is.Equal(b["metrics"], nil)

	otherID, _ := e.create(t, "t-owner", "other")
	tests := []struct {
		name, method, path, token string
		status                    int
		err                       string
	}{
		{"no token", "GET", instancesPath(id), "", 401, "token"},
		{"member", "GET", instancesPath(id), "t-member", 403, "Permission denied"},
		{"member release", "DELETE", instancesPath(id, "inst-a"), "t-member", 403, "Permission denied"},
		{"unknown key", "GET", instancesPath("0190a5b2-0000-7000-8000-000000000000"), "t-owner", 404, "License key not found"},
		{"malformed key id", "GET", instancesPath("nope"), "t-owner", 404, "License key not found"},
		{"another organization's key", "GET", instancesPath(id), "t-other", 404, "License key not found"},
		{"another organization's key release", "DELETE", instancesPath(id, "inst-a"), "t-other", 404, "License key not found"},
		{"instance of another key", "DELETE", instancesPath(otherID, "inst-a"), "t-owner", 404, "Instance not found"},
		{"unknown instance", "DELETE", instancesPath(id, "inst-z"), "t-owner", 404, "Instance not found"},
		{"overlong instance", "DELETE", instancesPath(id, strings.Repeat("a", 3000)), "t-owner", 404, "Instance not found"},
		{"wrong method", "POST", instancesPath(id), "t-owner", 405, "Method not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, tc.method, tc.path, tc.token, "")
			is.Equal(r.status, tc.status)
			is.True(strings.Contains(r.body["error"].(string), tc.err)) // the message says what is wrong
		})
	}
	is.Equal(len(e.do(t, "GET", instancesPath(id), "t-owner", "").body["instances"].([]any)), 2) // nothing was released
	is.Equal(len(e.eventsOf(licensing.EventInstanceReleased)), 0)
	is.Equal(e.do(t, "DELETE", instancesPath(id, "inst-a"), "t-owner", "").status, 200)
	is.Equal(e.do(t, "DELETE", instancesPath(id, "inst-a"), "t-owner", "").status, 404) // released once
}

// TestMaxInstancesInput: maxInstances at create and PATCH is null or a
// whole number from 1 to 1000; anything else is refused and nothing
// stored.
func TestMaxInstancesInput(t *testing.T) {
	for _, v := range []string{`0`, `-1`, `1001`, `1.5`, `2e1`, `"3"`, `true`, `[]`, `{}`, `99999999999999999999`} {
		t.Run(v, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			r := e.do(t, "POST", keysPath, "t-owner", `{"maxInstances":`+v+`}`)
			is.Equal(r.status, 400)
			is.Equal(r.body["error"], licensing.ErrInvalidMaxInstances.Message)
			is.Equal(e.count(t), 0) // nothing created
			id, _ := e.create(t, "t-owner", "prod")
			r = e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"maxInstances":`+v+`,"expiresAt":"2030-01-01T00:00:00Z"}`)
			is.Equal(r.status, 400)
			is.Equal(r.body["error"], licensing.ErrInvalidMaxInstances.Message)
			is.Equal(e.listed(t, id)["expiresAt"], nil) // neither field written
		})
	}
	is := is.New(t)
	e := newEnv(t, nil)
	for _, v := range []string{`1`, `1000`, `null`} {
		r := e.do(t, "POST", keysPath, "t-owner", `{"maxInstances":`+v+`}`)
		is.Equal(r.status, 201)
	}
	id, _ := e.create(t, "t-owner", "prod")
	is.Equal(e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "").status, 200)
	r := e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"maxInstances":5}`)
	is.Equal(r.status, 403) // a revoked key keeps what it had
	is.Equal(r.body["error"], "License key is revoked")
	_, err := e.svc.CreateKey(context.Background(), licensing.Actor{UserID: "user-1", OrganizationID: "org-1"},
		licensing.CreateKeyInput{MaxInstances: licensing.MaxInstancesLimit + 1})
	is.True(errors.Is(err, licensing.ErrInvalidMaxInstances)) // the Service checks too
}

// seatFailStore fails SeatInstance with err.
type seatFailStore struct {
	*licensing.MemoryStore
	err error
}

func (s *seatFailStore) SeatInstance(ctx context.Context, keyID string, inst licensing.Instance, limit int, lease time.Duration) (int, bool, error) {
	return 0, false, s.err
}

// TestSeatStoreFailure: a store that cannot seat an instance fails the
// validation as any store failure does (503 when it refuses writes, 500
// otherwise); a validation without an instance does not need it.
func TestSeatStoreFailure(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{{licensing.ErrStoreFailed, 503}, {errors.New("connection reset"), 500}} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			is := is.New(t)
			st := &seatFailStore{MemoryStore: licensing.NewMemoryStore(), err: tc.err}
			e := newEnv(t, func(c *licensing.Config) { c.Store = st })
			_, key := e.create(t, "t-owner", "prod")
			r := e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"inst-a"`))
			is.Equal(r.status, tc.status)
			is.Equal(r.body["valid"], nil) // not an answer about the key
			is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, "")).status, 200)
		})
	}
}

// TestKeyActivatedOnce: the first successful validation of a key sends
// key.activated, once, naming the instance; later ones do not.
func TestKeyActivatedOnce(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.FlushInterval = time.Hour })
	_, key := e.create(t, "t-owner", "prod")
	for _, inst := range []string{"inst-a", "inst-b", "inst-a"} {
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":`+jsonString(inst))).status, 200)
	}
	is.NoErr(e.svc.Flush(context.Background()))
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, "")).status, 200)
	act := e.eventsOf(licensing.EventKeyActivated)
	is.Equal(len(act), 1)
	is.Equal(act[0].InstanceID, "inst-a")
	is.Equal(act[0].MaskedKey, wire.MaskKey(key))
}

// recordingStore keeps the validation records written to it.
type recordingStore struct {
	*licensing.MemoryStore
	recs []licensing.ValidationRecord
}

func (s *recordingStore) RecordValidations(ctx context.Context, recs []licensing.ValidationRecord) error {
	s.recs = append(s.recs, recs...)
	return s.MemoryStore.RecordValidations(ctx, recs)
}

// TestEveryInstanceRecorded: the batch keeps one record per key and
// instance, so that each instance of a shared key reaches the store
// (which may keep a seated instance's sightings in memory until then),
// and the key's own fields are the latest validation's.
func TestEveryInstanceRecorded(t *testing.T) {
	is := is.New(t)
	st := &recordingStore{MemoryStore: licensing.NewMemoryStore()}
	e := newEnv(t, func(c *licensing.Config) { c.Store = st; c.FlushInterval = time.Hour })
	_, key := e.create(t, "t-owner", "prod")
	for i, inst := range []string{"inst-a", "inst-b", "inst-a", "inst-b", "inst-c"} {
		e.clock.Add(time.Second)
		_, err := e.svc.ValidateKey(context.Background(), licensing.ValidateInput{LicenseKey: key, InstanceID: inst,
			InstanceURL: "https://" + inst + ".example", Metrics: map[string]float64{"companyCount": float64(i)}})
		is.NoErr(err)
	}
	e.clock.Add(time.Second)
	_, err := e.svc.ValidateKey(context.Background(), licensing.ValidateInput{LicenseKey: key, InstanceID: "inst-a", InstanceURL: "https://inst-a.example",
		Metrics: map[string]float64{"companyCount": 9}})
	is.NoErr(err)
	is.NoErr(e.svc.Flush(context.Background()))
	byInstance := map[string]licensing.ValidationRecord{}
	for _, r := range st.recs {
		byInstance[r.InstanceID] = r
	}
	is.Equal(len(st.recs), 3)    // one record per instance
	is.Equal(len(byInstance), 3) // inst-a, inst-b, inst-c
	is.Equal(byInstance["inst-b"].Metrics, map[string]float64{"companyCount": 3})
	keys, err := st.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(keys[0].InstanceURL, "https://inst-a.example") // the latest validation's
	is.Equal(keys[0].LastMetrics, map[string]float64{"companyCount": 9})
}

// TestInstanceIDNotADotSegment: an instanceId of "." or ".." is refused.
// As a path segment it cannot be named: browsers, curl and Go's ServeMux
// resolve DELETE /keys/{id}/instances/.. to DELETE /keys/{id}, so the owner
// freeing that instance's seat would revoke the key instead.
func TestInstanceIDNotADotSegment(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, key := e.create(t, "t-owner", "prod")
	for _, dots := range []string{".", ".."} {
		r := e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"`+dots+`"`))
		is.Equal(r.status, 400)
		is.Equal(r.raw, `{"error":"instanceId must be at most 128 printable ASCII characters without spaces, other than . and .."}`+"\n")
	}
	is.Equal(e.do(t, "GET", instancesPath(id), "t-owner", "").raw, `{"instances":[]}`+"\n")          // no seat the owner cannot free
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"..."`)).status, 200) // three dots are a name
}

// TestReleaseInstanceOfAnyID: every id an instance may be counted under is
// listed as counted and freed through its path-escaped form: slashes,
// percent signs, query and fragment characters, dot segments inside an
// id, international host names and paths.
func TestReleaseInstanceOfAnyID(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct{ field, value, id string }{
		{"instanceId", "a/b", "a/b"},
		{"instanceId", "a%2Fb", "a%2Fb"},
		{"instanceId", "a%b", "a%b"},
		{"instanceId", "a?b#c", "a?b#c"},
		{"instanceId", "./x", "./x"},
		{"instanceId", "x/..", "x/.."},
		{"instanceUrl", "https://BÜCHER.example/facturi/ș/", "https://bücher.example/facturi/ș"},
		{"instanceUrl", "https://a.example/app%2F?x=1", "https://a.example/app%2F?x=1"},
		{"instanceUrl", "https://a.example/a/../b", "https://a.example/a/../b"},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "POST", keysPath, "t-owner", `{"maxInstances":1}`)
			id, key := r.body["id"].(string), r.body["licenseKey"].(string)
			is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"`+tc.field+`":"`+tc.value+`"`)).status, 200)
			list := e.do(t, "GET", instancesPath(id), "t-owner", "").body["instances"].([]any)
			is.Equal(len(list), 1)
			is.Equal(list[0].(map[string]any)["id"], tc.id)
			is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"other"`)).status, 403) // the one seat is taken
			is.Equal(e.do(t, "DELETE", instancesPath(id, tc.id), "t-owner", "").raw, `{"status":"released"}`+"\n")
			is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"other"`)).status, 200) // and free
		})
	}
}

// TestInstanceMerge: a later sighting brings its LastSeenAt if later and
// its set fields; unset ones and the identity stay, and the metrics are a
// copy.
func TestInstanceMerge(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	have := licensing.Instance{ID: "a", Name: "old", URL: "https://old.example", FirstSeenAt: t0, LastSeenAt: t0.Add(time.Hour),
		Metrics: map[string]float64{"users": 1}}
	tests := []struct {
		name string
		seen licensing.Instance
		want licensing.Instance
	}{
		{"nothing set", licensing.Instance{}, have},
		{"later", licensing.Instance{LastSeenAt: t0.Add(2 * time.Hour), Name: "new"},
			licensing.Instance{ID: "a", Name: "new", URL: "https://old.example", FirstSeenAt: t0, LastSeenAt: t0.Add(2 * time.Hour), Metrics: have.Metrics}},
		{"earlier keeps LastSeenAt", licensing.Instance{LastSeenAt: t0, URL: "https://new.example", Metrics: map[string]float64{"users": 2}},
			licensing.Instance{ID: "a", Name: "old", URL: "https://new.example", FirstSeenAt: t0, LastSeenAt: t0.Add(time.Hour), Metrics: map[string]float64{"users": 2}}},
		{"identity stays", licensing.Instance{ID: "b", FirstSeenAt: t0.Add(time.Minute)}, have},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			got := have.Merge(tc.seen)
			is.Equal(got, tc.want)
			if tc.seen.Metrics != nil {
				tc.seen.Metrics["users"] = 99 // the merge holds a copy
				is.Equal(got.Metrics["users"], tc.want.Metrics["users"])
			}
		})
	}
}
