package licensing_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

var (
	uuidV7  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	apiTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$`)
	fullKey = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

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
