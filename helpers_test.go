package licensing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensekit/licensing"
)

// testOrgs is an Organizations backed by a map the test may change.
type testOrgs struct {
	mu sync.RWMutex
	m  map[string]licensing.Organization
}

func (o *testOrgs) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	org, ok := o.m[id]
	if !ok {
		return licensing.Organization{}, licensing.ErrOrgNotFound
	}
	return org, nil
}

func (o *testOrgs) update(id string, fn func(*licensing.Organization)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	org := o.m[id]
	fn(&org)
	o.m[id] = org
}

// eligibleOrgs knows every organization id: active, on a plan with
// selfHostingLicense; "org-N" is owned by user "user-N".
var eligibleOrgs = licensing.OrganizationsFunc(func(ctx context.Context, id string) (licensing.Organization, error) {
	return licensing.Organization{ID: id, Name: "Org " + id, OwnerID: "user-" + strings.TrimPrefix(id, "org-"), Plan: "business", Active: true,
		Features: map[string]any{"selfHostingLicense": true}}, nil
})

// testAuth maps bearer tokens to users and users to their organizations
// (the first one is the default).
type testAuth struct {
	users map[string]string   // token -> user
	orgs  map[string][]string // user -> organizations
}

func (a testAuth) Authenticate(r *http.Request) (licensing.Actor, error) {
	tok, err := licensing.BearerToken(r)
	if err != nil {
		return licensing.Actor{}, err
	}
	user, ok := a.users[tok]
	if !ok {
		return licensing.Actor{}, licensing.ErrUnauthorized
	}
	return licensing.ResolveActor(r, user, a.orgs[user])
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testPepper = bytes.Repeat([]byte("pepper!!"), 4)

// env is a Service with two organizations behind an httptest server:
// org-1 (owner user-1 with token "t-owner", member user-2 with "t-member",
// plan business) and org-2 (owner user-3 with "t-other", plan starter).
type env struct {
	svc    *licensing.Service
	store  *licensing.MemoryStore
	orgs   *testOrgs
	clock  *clock
	srv    *httptest.Server
	mu     sync.Mutex
	events []licensing.Event
}

func newEnv(t testing.TB, mod func(*licensing.Config)) *env {
	t.Helper()
	return newEnvHTTP(t, mod, nil)
}

// newEnvHTTP is newEnv with the Handler's config changed by hmod; the
// default is the zero HandlerConfig's validation limit (30 a minute) and no
// owner limit, which the tests that count owner requests set themselves.
func newEnvHTTP(t testing.TB, mod func(*licensing.Config), hmod func(*licensing.HandlerConfig)) *env {
	t.Helper()
	e := &env{
		store: licensing.NewMemoryStore(),
		clock: &clock{t: time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)},
		orgs: &testOrgs{m: map[string]licensing.Organization{
			"org-1": {ID: "org-1", Name: "SC Firma Mea SRL", OwnerID: "user-1", Plan: "business", Active: true,
				Features:         map[string]any{"selfHostingLicense": true, "maxCompanies": 10.0, "maxUsersPerOrg": 10.0},
				CurrentPeriodEnd: time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC)},
			"org-2": {ID: "org-2", Name: "Other SRL", OwnerID: "user-3", Plan: "starter", Active: true,
				Features: map[string]any{"selfHostingLicense": false, "maxCompanies": 3.0}},
		}},
	}
	cfg := licensing.Config{
		Store:         e.store,
		Organizations: e.orgs,
		Pepper:        testPepper,
		Policy:        licensing.Policy{RequiredFeature: "selfHostingLicense", BillingURL: "https://app.example.ro/settings/billing", Issuer: "licensing.test"},
		Now:           e.clock.Now,
		Logger:        slog.New(slog.DiscardHandler),
		OnEvent: func(ctx context.Context, ev licensing.Event) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := licensing.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	auth := testAuth{
		users: map[string]string{"t-owner": "user-1", "t-member": "user-2", "t-other": "user-3"},
		orgs:  map[string][]string{"user-1": {"org-1"}, "user-2": {"org-1"}, "user-3": {"org-2", "org-1"}},
	}
	hcfg := licensing.HandlerConfig{OwnerRateLimit: licensing.Unlimited}
	if hmod != nil {
		hmod(&hcfg)
	}
	e.srv = httptest.NewServer(licensing.NewHandler(svc, auth, hcfg))
	t.Cleanup(func() {
		e.srv.Close()
		svc.Close(context.Background())
	})
	return e
}

func (e *env) eventsOf(typ licensing.EventType) []licensing.Event {
	if err := e.svc.Flush(context.Background()); err != nil { // validate-route events arrive off the request path
		panic(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []licensing.Event
	for _, ev := range e.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

type response struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// do sends a request; hdr holds header name/value pairs.
func (e *env) do(t testing.TB, method, path, token, body string, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return r
}

// create makes a key through HTTP and returns id and full key.
func (e *env) create(t testing.TB, token, name string) (string, string) {
	t.Helper()
	r := e.do(t, "POST", "/api/v1/licensing/keys", token, `{"instanceName":`+jsonString(name)+`}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string), r.body["licenseKey"].(string)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// count returns how many keys the env's store holds, over every organization.
func (e *env) count(t testing.TB) int {
	t.Helper()
	n := 0
	for _, org := range []string{"org-1", "org-2"} {
		keys, err := e.store.ListKeys(context.Background(), org, licensing.KeyCursor{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		n += len(keys)
	}
	return n
}

var hexRun64 = regexp.MustCompile(`[0-9a-fA-F]{64}`)

// fuzzEnv is an env with the rate limiter off and one key of org-1.
func fuzzEnv(f *testing.F) (*env, string) {
	e := newEnvHTTP(f, nil, func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	_, key := e.create(f, "t-owner", "prod")
	return e, key
}

// post sends body to path and returns status and raw answer.
func post(t *testing.T, e *env, method, path, token, contentType string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, raw
}

// checkErrorAnswer checks an error answer: a JSON object holding a
// non-empty "error" and only the documented optional fields, with no full
// key outside the echoed nonce.
func checkErrorAnswer(t *testing.T, status int, raw []byte, allowed ...string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%d: answer is not a JSON object: %q", status, raw)
	}
	msg, ok := m["error"].(string)
	if !ok || msg == "" {
		t.Fatalf("%d: no error message: %q", status, raw)
	}
	for k := range m {
		if k != "error" && !strings.Contains(" "+strings.Join(allowed, " ")+" ", " "+k+" ") {
			t.Fatalf("%d: undocumented field %q in %q", status, k, raw)
		}
	}
	withoutNonce := map[string]any{}
	for k, v := range m {
		if k != "nonce" {
			withoutNonce[k] = v
		}
	}
	b, _ := json.Marshal(withoutNonce)
	if hexRun64.Match(b) {
		t.Fatalf("%d: an error answer holds something shaped like a full key: %q", status, raw)
	}
	return m
}

func validateBody(key string, extra string) string {
	b := `{"licenseKey":` + jsonString(key)
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}
