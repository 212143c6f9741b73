package licensing_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// FuzzCreateBody posts arbitrary bytes as an owner to the create route,
// under an arbitrary declared content type.
func FuzzCreateBody(f *testing.F) {
	e, _ := fuzzEnv(f)
	for _, s := range [][2]string{
		{`{"instanceName":"Production Server"}`, "application/json"},
		{`{"instanceName":"a\u202eb"}`, "text/plain"},
		{"{\"instanceName\":\"a\xffb\"}", "application/x-www-form-urlencoded"},
		{`{"instanceName":5}`, ""},
		{nested(100), "application/json"},
		{`instanceName=x`, "application/x-www-form-urlencoded"},
		{`{"instanceName":null,"color":"blue"}`, "application/json; charset=utf-8"},
	} {
		f.Add([]byte(s[0]), s[1])
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		if len(contentType) > 256 || strings.ContainsFunc(contentType, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return // the client refuses such headers
		}
		status, _, raw := post(t, e, "POST", keysPath, "t-owner", contentType, body)
		if status >= 500 {
			t.Fatalf("%d for %q: %s", status, body, raw)
		}
		if status == http.StatusCreated {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatalf("201 answer is not JSON: %q", raw)
			}
			if len(m) != 7 || !uuidV7.MatchString(m["id"].(string)) || !fullKey.MatchString(m["licenseKey"].(string)) {
				t.Fatalf("201 answer of another shape: %q", raw)
			}
			if name, ok := m["instanceName"].(string); ok && strings.ContainsAny(name, "\u202e\u200b\x00\ufffd") {
				t.Fatalf("a name with a control, format or replacement character was stored: %q", raw)
			}
			return
		}
		checkErrorAnswer(t, status, raw)
	})
}

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
	is.Equal(keysOf(r.body), []string{"active", "createdAt", "expiresAt", "id", "instanceName", "licenseKey", "maxInstances"}) // exactly the documented fields
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
