package licensing_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

var (
	uuidV7  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	apiTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$`)
	fullKey = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestCreateKey(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	r := e.do(t, "POST", "/api/v1/licensing/keys", "t-owner", `{"instanceName": "Production Server"}`)
	is.Equal(r.status, http.StatusCreated)
	is.Equal(r.header.Get("Cache-Control"), "no-store") // the one answer with the full key is never cached
	is.Equal(r.header.Get("Content-Type"), "application/json")
	is.Equal(keysOf(r.body), []string{"active", "createdAt", "expiresAt", "id", "instanceName", "licenseKey"}) // exactly the documented fields
	is.True(uuidV7.MatchString(r.body["id"].(string)))
	is.True(fullKey.MatchString(r.body["licenseKey"].(string)))
	is.Equal(r.body["instanceName"], "Production Server")
	is.Equal(r.body["active"], true)
	is.Equal(r.body["createdAt"], "2026-02-20T10:30:00+00:00")
	is.Equal(r.body["expiresAt"], nil) // never expires
	_, err := licensing.ParseKey(r.body["licenseKey"].(string))
	is.NoErr(err) // the key carries a valid checksum

	created := e.eventsOf(licensing.EventKeyCreated)
	is.Equal(len(created), 1)
	is.Equal(created[0].KeyID, r.body["id"])
	is.Equal(created[0].MaskedKey, wire.MaskKey(r.body["licenseKey"].(string)))
}

func TestCreateKeyWithoutBody(t *testing.T) {
	for _, tc := range []struct {
		name, body, contentType string
	}{
		{"no body no content type", "", ""},
		{"no body json content type", "", "application/json"},
		{"empty object", "{}", "application/json; charset=utf-8"},
		{"null name and unknown fields", `{"instanceName": null, "color": "blue"}`, "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			r := e.do(t, "POST", "/api/v1/licensing/keys", "t-owner", tc.body, "Content-Type", tc.contentType)
			is.Equal(r.status, http.StatusCreated)
			v, present := r.body["instanceName"]
			is.True(present) // instanceName is always present
			is.Equal(v, nil) // and null when not given
		})
	}
}

func TestCreateKeyErrors(t *testing.T) {
	long := strings.Repeat("é", 256)
	tests := []struct {
		name, token, body string
		hdr               []string
		status            int
		errContains       string
	}{
		{"no token", "", `{}`, nil, 401, "token"},
		{"malformed authorization", "", `{}`, []string{"Authorization", "Bearer"}, 401, "token"},
		{"basic scheme", "", `{}`, []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "token"},
		{"unknown token", "nope", `{}`, nil, 401, "token"},
		{"member not owner", "t-member", `{}`, nil, 403, "Permission denied"},
		{"plan without feature", "t-other", `{}`, nil, 403, "upgrade"},
		{"unknown organization header", "t-owner", `{}`, []string{"X-Organization", "org-404"}, 404, "Organization not found"},
		{"organization of others", "t-owner", `{}`, []string{"X-Organization", "org-2"}, 404, "Organization not found"},
		{"malformed json", "t-owner", `{"instanceName":`, nil, 400, "Malformed JSON"},
		{"name not a string", "t-owner", `{"instanceName": 5}`, nil, 400, "instanceName must be a string"},
		{"name too long", "t-owner", `{"instanceName": "` + long + `"}`, nil, 400, "instanceName"},
		{"name with control character", "t-owner", `{"instanceName": "a\u0007b"}`, nil, 400, "instanceName"},
		{"not json", "t-owner", `instanceName=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400, "Malformed JSON"},
		{"invalid utf-8 in name", "t-owner", "{\"instanceName\": \"a\xffb\"}", nil, 400, "instanceName must be valid UTF-8"},
		{"bidi override in name", "t-owner", `{"instanceName": "a\u202eb"}`, nil, 400, "instanceName"},
		{"format character in name", "t-owner", `{"instanceName": "a\u200bb"}`, nil, 400, "instanceName"},
		{"too large", "t-owner", `{"instanceName": "` + strings.Repeat("a", 70<<10) + `"}`, nil, 413, "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			r := e.do(t, "POST", "/api/v1/licensing/keys", tc.token, tc.body, tc.hdr...)
			is.Equal(r.status, tc.status)
			if tc.status == 401 {
				is.Equal(keysOf(r.body), []string{"error", "hint"}) // an owner route's 401 adds a hint
			} else {
				is.Equal(keysOf(r.body), []string{"error"}) // errors are {"error": ...}
			}
			is.True(strings.Contains(r.body["error"].(string), tc.errContains)) // the message says what is wrong
			is.Equal(e.count(t), 0)                                             // nothing was created
		})
	}
}

func TestCreateKeyInactiveOrganization(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	e.orgs.update("org-1", func(o *licensing.Organization) { o.Active = false })
	r := e.do(t, "POST", "/api/v1/licensing/keys", "t-owner", `{}`)
	is.Equal(r.status, 403)
	is.Equal(r.raw, `{"error":"Organization is inactive"}`+"\n")
}

func TestCreateKeyOrganizationHeader(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	// user-3 owns org-2 (its default, starter) and is a member of org-1.
	r := e.do(t, "POST", "/api/v1/licensing/keys", "t-other", `{}`, "X-Organization", "org-1")
	is.Equal(r.status, 403)                        // picked org-1, where user-3 is not the owner
	is.Equal(r.body["error"], "Permission denied") // the seed system's text
	e.orgs.update("org-2", func(o *licensing.Organization) { o.Features = map[string]any{"selfHostingLicense": true} })
	r = e.do(t, "POST", "/api/v1/licensing/keys", "t-other", `{}`, "X-Organization", "org-2")
	is.Equal(r.status, 201)
	keys, err := e.store.ListKeys(context.Background(), "org-2", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(len(keys), 1) // the key belongs to the chosen organization
}

func TestMethodNotAllowedAndNotFound(t *testing.T) {
	tests := []struct {
		method, path, allow string
		status              int
	}{
		{"PUT", "/api/v1/licensing/keys", "GET, HEAD, POST", 405},
		{"GET", "/api/v1/licensing/validate", "POST", 405},
		{"POST", "/api/v1/licensing/keys/019c8a12-4567-7abc-def0-123456789abc", "DELETE, PATCH", 405},
		{"GET", "/api/v1/licensing/keys/019c8a12-4567-7abc-def0-123456789abc/rotate", "POST", 405},
		{"GET", "/api/v1/licensing/nothing", "", 404},
		{"GET", "/x/y/api/v1/licensing/public-keys", "", 404}, // the prefix matches only at the start
		{"GET", "/api/v1/licensing/keys/a/b/jwt", "", 404},
		{"PATCH", "/api/v1/licensing/keys/x/jwt", "POST", 405},
		{"DELETE", "/api/v1/licensing/public-keys", "GET, HEAD", 405},
		{"OPTIONS", "/api/v1/licensing/revocations", "GET, HEAD", 405},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			r := e.do(t, tc.method, tc.path, "t-owner", "")
			is.Equal(r.status, tc.status)
			is.Equal(r.header.Get("Allow"), tc.allow)
			is.True(r.body["error"] != nil) // JSON error body
		})
	}
}

func TestHandlerMountsUnderRouters(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	auth := licensing.AuthenticatorFunc(func(r *http.Request) (licensing.Actor, error) {
		return licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}, nil
	})
	h := licensing.NewHandler(e.svc, auth, licensing.HandlerConfig{})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/licensing/", h)
	mux.Handle("/v2/", http.StripPrefix("/v2", h))
	mux.Handle("/vendor/", http.StripPrefix("/vendor", h))
	for _, path := range []string{"/api/v1/licensing/keys", "/v2/keys", "/vendor/api/v1/licensing/keys"} {
		rec := httptest.NewRecorder()
		req, _ := http.NewRequest("GET", path, nil)
		mux.ServeHTTP(rec, req)
		is.Equal(rec.Code, 200) // served under both mounts
		var body struct{ Keys []any }
		is.NoErr(json.Unmarshal(rec.Body.Bytes(), &body))
		is.True(body.Keys != nil) // an empty list is [], not null
	}
}

func TestCreateKeyAcceptsJSONWhateverItsDeclaredType(t *testing.T) {
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "", "application/json; charset=utf-8"} {
		t.Run(ct, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			hdr := []string{"Content-Type", ct}
			r := e.do(t, "POST", "/api/v1/licensing/keys", "t-owner", `{"instanceName": "curl -d"}`, hdr...)
			is.Equal(r.status, 201) // curl -d declares a form; the seed system decodes any body
			is.Equal(r.body["instanceName"], "curl -d")
		})
	}
}

func TestOwnerRoutesRefuseCrossSiteForms(t *testing.T) {
	// An embedder whose authenticator reads a session cookie.
	cookieAuth := licensing.AuthenticatorFunc(func(r *http.Request) (licensing.Actor, error) {
		if c, err := r.Cookie("session"); err == nil && c.Value == "alice" {
			return licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}, nil
		}
		if tok, err := licensing.BearerToken(r); err == nil && tok == "t-owner" {
			return licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}, nil
		}
		return licensing.Actor{}, licensing.ErrUnauthorized
	})
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"cross-site form with cookie", map[string]string{"Cookie": "session=alice", "Sec-Fetch-Site": "cross-site",
			"Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"other origin with cookie", map[string]string{"Cookie": "session=alice", "Origin": "https://evil.example"}, 403},
		{"same-site but other origin with cookie", map[string]string{"Cookie": "session=alice", "Sec-Fetch-Site": "same-site"}, 403},
		{"same origin with cookie", map[string]string{"Cookie": "session=alice", "Sec-Fetch-Site": "same-origin"}, 201},
		{"no browser headers (curl) with cookie", map[string]string{"Cookie": "session=alice"}, 201},
		{"trusted origin with cookie", map[string]string{"Cookie": "session=alice", "Origin": "https://admin.example.com",
			"Sec-Fetch-Site": "cross-site"}, 201},
		{"bearer token from another origin", map[string]string{"Authorization": "Bearer t-owner", "Origin": "https://spa.example",
			"Sec-Fetch-Site": "cross-site"}, 201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			srv := httptest.NewServer(licensing.NewHandler(e.svc, cookieAuth,
				licensing.HandlerConfig{TrustedOrigins: []string{"https://admin.example.com"}}))
			defer srv.Close()
			req, err := http.NewRequest("POST", srv.URL+"/api/v1/licensing/keys", strings.NewReader(`{"instanceName":"x"}`))
			is.NoErr(err)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			is.NoErr(err)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			is.Equal(res.StatusCode, tc.status) // cross-site cookie requests are refused, bearer ones are not
			if tc.status == 403 {
				is.Equal(string(b), `{"error":"`+licensing.ErrCrossOrigin.Message+`"}`+"\n")
				is.Equal(e.count(t), 0) // nothing was created
			}
		})
	}
}

// TestHeadAnswersWhereGetDoes: every path whose Allow names HEAD answers a
// HEAD with the GET's status and headers and no body.
func TestHeadAnswersWhereGetDoes(t *testing.T) {
	for _, path := range []string{"/api/v1/licensing/keys", "/api/v1/licensing/public-keys", "/api/v1/licensing/revocations?org=org-1"} {
		t.Run(path, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			get := e.do(t, "GET", path, "t-owner", "")
			head := e.do(t, "HEAD", path, "t-owner", "")
			is.Equal(get.status, 200)
			is.Equal(head.status, get.status)
			is.Equal(head.raw, "") // no body
			is.Equal(head.header.Get("Content-Type"), get.header.Get("Content-Type"))
			is.Equal(get.header.Get("X-Content-Type-Options"), "nosniff") // every answer
			is.Equal(head.header.Get("X-Content-Type-Options"), "nosniff")
		})
	}
}
