package apitest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"
	"github.com/pb33f/libopenapi/datamodel/high/base"
)

// probe is one crawl request: a variation of an operation's plain request.
type probe struct {
	name string
	request
}

// TestCrawl sends every documented operation a battery of variations derived
// from the document (credentials, organizations, bodies from the request
// schema, path and query values from the parameter schemas, other methods,
// the rate limit) and checks that every answer's status is documented for
// the operation and matches its schema and headers.
func TestCrawl(t *testing.T) {
	is := is.New(t)
	ranCrawl = true
	n := 0
	for _, op := range doc.operations() {
		active, err := primary.createKey("") // a fresh key: a revoke probe must not spoil the next operation's
		is.NoErr(err)
		for _, p := range probes(op, active) {
			n++
			t.Run(op.name()+"/"+p.name, func(t *testing.T) {
				is := is.New(t)
				a, err := p.send()
				is.NoErr(err)
				record(op, a)
				if probs := conforms(op, a); len(probs) > 0 {
					fail(t, fmt.Sprintf("%s probe %q", op.name(), p.name), p.request, a, probs)
				}
			})
		}
	}
	t.Logf("%d probes", n)
}

// TestUnknownPaths checks that paths the document does not list are not
// served: 404 under the API prefix (with an error body), and no route
// matches the prefix anywhere but at the start of the path.
func TestUnknownPaths(t *testing.T) {
	is := is.New(t)
	var paths []string
	for path := range doc.model.Paths.PathItems.KeysFromOldest() {
		if strings.Contains(path, "{") {
			continue
		}
		paths = append(paths, path+"/", path+"/extra", "/mounted/elsewhere"+path)
	}
	paths = append(paths, "/api/v1/licensing/", "/api/v1/licensing/nope", "/api/v1/licensing/keys/a/b/c",
		"/api/v1/licensing/keys/"+revoked.id+"/jwt/x")
	unknown := doc.unknownPath()
	is.True(unknown != nil) // the document names the answer to unknown paths (x-unknown-path)
	text, ok := xError(unknown)
	is.True(ok) // with its exact text (x-error)
	schema, _ := schemaOf(unknown, "application/json")
	for _, path := range paths {
		if documented(path) {
			continue // a documented template matches it (for example /keys/extra is /keys/{id})
		}
		t.Run(path, func(t *testing.T) {
			is := is.New(t)
			a, err := request{method: http.MethodGet, path: path, header: http.Header{
				"Authorization": {"Bearer " + ownerToken}}}.send()
			is.NoErr(err)
			if a.status != http.StatusNotFound {
				t.Errorf("GET %s: %d %s, want 404: the path is not in the document", path, a.status, clip(a.body))
			}
			if !strings.HasPrefix(path, "/api/v1/licensing/") {
				return // not the handler's: the reference server's owner page answers it
			}
			var probs []string
			if ct := a.res.Header.Get("Content-Type"); !isJSON(ct) {
				probs = append(probs, fmt.Sprintf("Content-Type %q, documented application/json", ct))
			} else if schema != nil {
				probs = append(probs, validateBody(schema, a.body)...)
			}
			probs = append(probs, sameError(text, a.body)...)
			if len(probs) > 0 {
				t.Errorf("GET %s: %d %s\n  %s", path, a.status, clip(a.body), strings.Join(probs, "\n  "))
			}
		})
	}
}

// documented reports whether a path template of the document matches path.
func documented(path string) bool {
	segs := strings.Split(path, "/")
	for tmpl := range doc.model.Paths.PathItems.KeysFromOldest() {
		t := strings.Split(tmpl, "/")
		if len(t) != len(segs) {
			continue
		}
		ok := true
		for i := range t {
			if strings.HasPrefix(t[i], "{") && strings.HasSuffix(t[i], "}") {
				ok = ok && segs[i] != ""
			} else {
				ok = ok && t[i] == segs[i]
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// probes derives the crawl's requests for op.
func probes(op operation, active createdKey) []probe {
	base := request{method: op.method, path: op.path, header: http.Header{}}
	if op.secured() {
		base.header.Set("Authorization", "Bearer "+ownerToken)
	}
	// Path parameters: the active key by default.
	pathVals := map[string]string{}
	for _, p := range op.params() {
		if p.In == "path" {
			pathVals[p.Name] = active.id
		}
	}
	fill := func(r request, vals map[string]string) request {
		for name, v := range vals {
			r.path = strings.ReplaceAll(r.path, "{"+name+"}", url.PathEscape(v))
		}
		return r
	}
	// Required query parameters: their first example.
	q := url.Values{}
	for _, p := range op.params() {
		if p.In == "query" && p.Required != nil && *p.Required && p.Examples != nil && p.Examples.Len() > 0 {
			var v any
			p.Examples.First().Value().Value.Decode(&v)
			q.Set(p.Name, fmt.Sprint(v))
		}
	}
	base.query = q.Encode()
	// A body that passes: the operation's first request example, with real keys.
	var okBody map[string]any
	if rb := op.op.RequestBody; rb != nil && rb.Content != nil {
		if jm := rb.Content.GetOrZero("application/json"); jm != nil && jm.Examples != nil && jm.Examples.Len() > 0 {
			b, _ := nodeJSON(jm.Examples.First().Value().Value)
			s := strings.NewReplacer(exActiveKey, active.key, exActiveID, active.id).Replace(string(b))
			json.Unmarshal([]byte(s), &okBody)
		}
	}
	withBody := func(r request, body []byte, ct string) request {
		r.header = r.header.Clone()
		r.body = body
		if ct != "" {
			r.header.Set("Content-Type", ct)
		} else {
			r.header.Del("Content-Type")
		}
		return r
	}
	plain := fill(base, pathVals)
	if okBody != nil {
		b, _ := json.Marshal(okBody)
		plain = withBody(plain, b, "application/json")
	}
	var out []probe
	add := func(name string, r request) { out = append(out, probe{name, r}) }
	add("plain", plain)

	// Credentials and organizations.
	if op.secured() {
		for _, c := range []struct{ name, auth, org string }{
			{"no token", "", ""},
			{"unknown token", "Bearer lk_unknown", ""},
			{"basic scheme", "Basic YWxpY2U6cHc=", ""},
			{"empty bearer", "Bearer ", ""},
			{"token with a space", "Bearer " + ownerToken + " x", ""},
			{"token too long", "Bearer " + strings.Repeat("a", 4097), ""},
			{"member not owner", "Bearer " + memberToken, ""},
			{"member asks for other org", "Bearer " + memberToken, "org-free"},
			{"unknown organization", "Bearer " + ownerToken, "org-nobody"},
			{"inactive organization", "Bearer " + ownerToken, "org-closed"},
			{"plan without self-hosting", "Bearer " + ownerToken, "org-free"},
			{"downgraded organization", "Bearer " + ownerToken, "org-down"},
		} {
			r := plain
			r.header = plain.header.Clone()
			r.header.Del("Authorization")
			if c.auth != "" {
				r.header.Set("Authorization", c.auth)
			}
			if c.org != "" {
				r.header.Set("X-Organization", c.org)
			}
			add(c.name, r)
		}
		// Cross-origin browser requests, with and without a bearer token.
		for _, withToken := range []bool{false, true} {
			r := plain
			r.header = plain.header.Clone()
			r.header.Set("Sec-Fetch-Site", "cross-site")
			r.header.Set("Origin", "https://evil.example")
			r.header.Set("Cookie", "session=1")
			if !withToken {
				r.header.Del("Authorization")
			}
			add(fmt.Sprintf("cross-site (token %v)", withToken), r)
		}
	}

	// Bodies, from the request schema.
	if rb := op.op.RequestBody; rb != nil && rb.Content != nil {
		for _, c := range []struct{ name, body, ct string }{
			{"empty body", "", "application/json"},
			{"truncated JSON", `{"a":`, "application/json"},
			{"JSON array", `[]`, "application/json"},
			{"JSON null", `null`, "application/json"},
			{"JSON string", `"x"`, "application/json"},
			{"trailing garbage", `{} x`, "application/json"},
			{"deep nesting", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "application/json"},
			{"not JSON", "instanceName=x", "application/x-www-form-urlencoded"},
			{"body too large", `{"x":"` + strings.Repeat("a", 70000) + `"}`, "application/json"},
		} {
			add(c.name, withBody(plain, []byte(c.body), c.ct))
		}
		if okBody != nil {
			b, _ := json.Marshal(okBody)
			add("JSON as text/plain", withBody(plain, b, "text/plain"))
			add("no content type", withBody(plain, b, ""))
		}
		if jm := rb.Content.GetOrZero("application/json"); jm != nil && jm.Schema != nil {
			s := jm.Schema.Schema()
			if s.Properties != nil {
				for name, prop := range s.Properties.FromOldest() {
					for _, v := range badValues(prop.Schema()) {
						body := map[string]any{}
						for k, x := range okBody {
							body[k] = x
						}
						body[name] = v.value
						b, _ := json.Marshal(body)
						add(name+" "+v.name, withBody(plain, b, "application/json"))
					}
				}
				// Invalid UTF-8 in each string property.
				for name, prop := range s.Properties.FromOldest() {
					if ps := prop.Schema(); ps != nil && hasType(ps, "string") {
						b, _ := json.Marshal(okBody)
						raw := string(b)
						if raw == "null" {
							raw = "{}"
						}
						field := `"` + name + `":"\xff\xfe"`
						if len(raw) > 2 {
							field += ","
						}
						add(name+" invalid UTF-8", withBody(plain, []byte("{"+field+raw[1:]), "application/json"))
					}
				}
			}
		}
	}

	// Path parameters, from their schemas and the key states.
	for _, p := range op.params() {
		if p.In != "path" {
			continue
		}
		for _, c := range []struct{ name, value string }{
			{"not a UUID", "not-a-uuid"},
			{"unknown UUID", "019c8a12-0000-7000-8000-000000000000"},
			{"upper case", strings.ToUpper(active.id)},
			{"revoked key", revoked.id},
			{"other organization's key", downKey.id},
			{"long", strings.Repeat("a", 300)},
			{"license key as id", active.key},
		} {
			vals := map[string]string{}
			for k, v := range pathVals {
				vals[k] = v
			}
			vals[p.Name] = c.value
			r := fill(base, vals)
			r.body = plain.body
			add(p.Name+" "+c.name, r)
		}
	}

	// Query parameters, from their schemas.
	for _, p := range op.params() {
		if p.In != "query" || p.Schema == nil {
			continue
		}
		if p.Required != nil && *p.Required {
			r := plain
			qq, _ := url.ParseQuery(r.query)
			qq.Del(p.Name)
			r.query = qq.Encode()
			add(p.Name+" missing", r)
		}
		for _, v := range badValues(p.Schema.Schema()) {
			r := plain
			qq, _ := url.ParseQuery(r.query)
			qq.Set(p.Name, fmt.Sprint(v.value))
			r.query = qq.Encode()
			add(p.Name+"="+v.name, r)
		}
	}
	if op.path == "/api/v1/licensing/keys" && op.method == http.MethodGet {
		add("limit=1", withQuery(plain, "limit=1"))
		add("limit=1000", withQuery(plain, "limit=1000"))
	}

	// Other methods: 405 from the path's x-other-methods response.
	if op.method == op.allowed()[0] {
		for _, m := range crawlMethods {
			if !contains(op.allowed(), m) {
				r := plain
				r.method = m
				add("method "+m, r)
			}
		}
	}

	// The rate limit: the plain request three times on the limited server.
	for i := 1; i <= 3; i++ {
		r := plain
		r.server = limited
		add(fmt.Sprintf("rate-limited server #%d", i), r)
	}
	return out
}

func withQuery(r request, q string) request {
	if r.query != "" {
		r.query += "&"
	}
	r.query += q
	return r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasType(s *base.Schema, t string) bool {
	for _, x := range s.Type {
		if x == t {
			return true
		}
	}
	return false
}

// badValue is a value a schema refuses, or one at its edge.
type badValue struct {
	name  string
	value any
}

// badValues derives values that break s: the wrong type, one past each
// bound, a control character where a pattern or text is expected.
func badValues(s *base.Schema) []badValue {
	if s == nil {
		return nil
	}
	var out []badValue
	switch {
	case hasType(s, "string"):
		out = append(out, badValue{"wrong type (number)", 42}, badValue{"wrong type (object)", map[string]any{}},
			badValue{"control character", "a\x07b"}, badValue{"bidi override", "a\u202eb"}, badValue{"empty", ""})
		if len(s.Enum) > 0 {
			out = append(out, badValue{"not in enum", "bogus"})
		}
		if s.MaxLength != nil {
			out = append(out, badValue{"maxLength+1", strings.Repeat("x", int(*s.MaxLength)+1)},
				badValue{"maxLength", strings.Repeat("x", int(*s.MaxLength))})
		}
	case hasType(s, "integer"):
		out = append(out, badValue{"not a number", "abc"}, badValue{"fraction", "1.5"}, badValue{"negative", -1})
		if s.Minimum != nil {
			out = append(out, badValue{"minimum-1", strconv.FormatFloat(*s.Minimum-1, 'f', -1, 64)})
		}
		if s.Maximum != nil {
			out = append(out, badValue{"maximum+1", strconv.FormatFloat(*s.Maximum+1, 'f', -1, 64)})
		}
	case hasType(s, "object"):
		out = append(out, badValue{"wrong type (string)", "x"}, badValue{"wrong type (array)", []any{1}},
			badValue{"null", nil})
		if s.MaxProperties != nil {
			m := map[string]any{}
			for i := 0; i <= int(*s.MaxProperties); i++ {
				m[fmt.Sprintf("m%03d", i)] = 1
			}
			out = append(out, badValue{"maxProperties+1", m})
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.IsA() {
			out = append(out, badValue{"value a string", map[string]any{"m": "1"}},
				badValue{"value negative", map[string]any{"m": -1}},
				badValue{"value huge", map[string]any{"m": math.MaxFloat64}},
				badValue{"empty name", map[string]any{"": 1}},
				badValue{"long name", map[string]any{strings.Repeat("n", 65): 1}},
				badValue{"control character in name", map[string]any{"a\x01": 1}})
		}
	}
	return out
}

func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
