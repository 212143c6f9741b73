package licensing_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// countingObserver is an Observer that counts what it is told.
type countingObserver struct {
	mu       sync.Mutex
	requests map[string]int // "route status"
	outcomes map[licensing.Outcome]int
}

var _ licensing.Observer = (*countingObserver)(nil)

func newCountingObserver() *countingObserver {
	return &countingObserver{requests: map[string]int{}, outcomes: map[licensing.Outcome]int{}}
}

func (o *countingObserver) Request(route string, status int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests[route+" "+strconv.Itoa(status)]++
}

func (o *countingObserver) Validation(outcome licensing.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes[outcome]++
}

func (o *countingObserver) snapshot() (map[string]int, map[licensing.Outcome]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	req, out := map[string]int{}, map[licensing.Outcome]int{}
	for k, v := range o.requests {
		req[k] = v
	}
	for k, v := range o.outcomes {
		out[k] = v
	}
	return req, out
}

// TestObserver drives each validation outcome through the Handler and checks
// that each request is reported once, under its route and status, and each
// validate request has exactly one outcome.
func TestObserver(t *testing.T) {
	is := is.New(t)
	obs := newCountingObserver()
	e := newEnvHTTP(t, func(c *licensing.Config) { c.Observer = obs }, func(h *licensing.HandlerConfig) { h.RateLimit, h.RateBurst = 60, 100 })
	_, good := e.create(t, "t-owner", "good")
	revokedID, revoked := e.create(t, "t-owner", "gone")
	is.Equal(e.do(t, "DELETE", "/api/v1/licensing/keys/"+revokedID, "t-owner", "").status, 200)
	_, inactive := e.create(t, "t-owner", "inactive")
	r := e.do(t, "POST", "/api/v1/licensing/keys", "t-owner", `{"maxInstances":1}`)
	is.Equal(r.status, 201)
	oneSeat := r.body["licenseKey"].(string)
	unknown, _ := wire.GenerateKey(nil)

	body := func(key string) string { return `{"licenseKey":` + jsonString(key) + `}` }
	cases := []struct {
		name    string
		body    string
		setup   func()
		status  int
		outcome licensing.Outcome
	}{
		{"valid", body(good), nil, 200, licensing.OutcomeValid},
		{"malformed", body("lk_nothex"), nil, 401, licensing.OutcomeMalformed},
		{"unknown", body(unknown), nil, 401, licensing.OutcomeUnknown},
		{"revoked", body(revoked), nil, 401, licensing.OutcomeRevoked},
		{"empty key", body(""), nil, 400, licensing.OutcomeInvalidInput},
		{"not JSON", `{"licenseKey":`, nil, 400, licensing.OutcomeInvalidInput},
		{"bad nonce", `{"licenseKey":` + jsonString(good) + `,"nonce":"` + strings.Repeat("x", 300) + `"}`, nil, 400, licensing.OutcomeInvalidInput},
		{"seat taken", `{"licenseKey":` + jsonString(oneSeat) + `,"instanceId":"second"}`, func() {
			is.Equal(e.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":`+jsonString(oneSeat)+`,"instanceId":"first"}`).status, 200)
		}, 403, licensing.OutcomeSeatLimit},
		{"not eligible", body(inactive), func() {
			e.orgs.update("org-1", func(o *licensing.Organization) { o.Features = map[string]any{"selfHostingLicense": false} })
		}, 403, licensing.OutcomeNotEligible},
		{"inactive", body(inactive), func() {
			e.orgs.update("org-1", func(o *licensing.Organization) {
				o.Active, o.Features = false, map[string]any{"selfHostingLicense": true}
			})
		}, 403, licensing.OutcomeInactive},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			if tc.setup != nil {
				tc.setup()
			}
			req0, out0 := obs.snapshot()
			r := e.do(t, "POST", "/api/v1/licensing/validate", "", tc.body)
			is.Equal(r.status, tc.status) // status
			req1, out1 := obs.snapshot()
			is.Equal(out1[tc.outcome]-out0[tc.outcome], 1) // the outcome counted once
			total0, total1 := 0, 0
			for _, n := range out0 {
				total0 += n
			}
			for _, n := range out1 {
				total1 += n
			}
			is.Equal(total1-total0, 1) // exactly one outcome per validate request
			key := "POST /validate " + strconv.Itoa(tc.status)
			is.Equal(req1[key]-req0[key], 1) // the request counted under its route and status
		})
	}
}

// TestObserverRoutes checks the route labels of the other routes, of a
// method not allowed and of an unknown path, and the rate-limited outcome.
func TestObserverRoutes(t *testing.T) {
	is := is.New(t)
	obs := newCountingObserver()
	e := newEnvHTTP(t, func(c *licensing.Config) { c.Observer = obs }, func(h *licensing.HandlerConfig) { h.RateLimit, h.RateBurst = 1, 1 })
	id, key := e.create(t, "t-owner", "a")
	e.do(t, "GET", "/api/v1/licensing/keys", "t-owner", "")
	e.do(t, "GET", "/keys", "", "") // no prefix, no token
	e.do(t, "PUT", "/api/v1/licensing/keys/"+id, "t-owner", "")
	e.do(t, "GET", "/api/v1/licensing/nothing", "", "")
	e.do(t, "GET", "/api/v1/licensing/public-keys", "", "")
	body := `{"licenseKey":` + jsonString(key) + `}`
	is.Equal(e.do(t, "POST", "/api/v1/licensing/validate", "", body).status, 200)
	is.Equal(e.do(t, "POST", "/api/v1/licensing/validate", "", body).status, 429)
	is.Equal(e.do(t, "POST", "/api/v1/licensing/validate", "", `{`).status, 429) // refused before decoding
	req, out := obs.snapshot()
	is.Equal(req, map[string]int{
		"POST /keys 201":       1,
		"GET /keys 200":        1,
		"GET /keys 401":        1,
		"/keys/{id} 405":       1,
		"unmatched 404":        1,
		"GET /public-keys 200": 1,
		"POST /validate 200":   1,
		"POST /validate 429":   2,
	})
	is.Equal(out, map[licensing.Outcome]int{licensing.OutcomeValid: 1, licensing.OutcomeRateLimited: 2})
}

// TestObserverService: ValidateKey called without a Handler reports the
// Service's outcomes.
func TestObserverService(t *testing.T) {
	is := is.New(t)
	obs := newCountingObserver()
	e := newEnv(t, func(c *licensing.Config) { c.Observer = obs })
	_, key := e.create(t, "t-owner", "a")
	_, err := e.svc.ValidateKey(context.Background(), licensing.ValidateInput{LicenseKey: key})
	is.NoErr(err)
	_, err = e.svc.ValidateKey(context.Background(), licensing.ValidateInput{LicenseKey: "nope"})
	is.True(err != nil)
	_, out := obs.snapshot()
	is.Equal(out, map[licensing.Outcome]int{licensing.OutcomeValid: 1, licensing.OutcomeMalformed: 1})
}
