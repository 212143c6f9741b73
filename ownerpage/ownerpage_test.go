package ownerpage_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/ownerpage"
)

// do sends one request to srv and returns the answer with its body read.
func do(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(ownerpage.Handler(ownerpage.Config{}))
	defer srv.Close()
	tests := []struct {
		name, method, path string
		status             int
		contentType        string
		cacheControl       string // "" when the answer is an error
		contains           string
	}{
		{"page", "GET", "/", 200, "text/html; charset=utf-8", "no-store", `<meta name="licensing-api" content="/api/v1/licensing">`},
		{"script", "GET", "/owner.js", 200, "text/javascript; charset=utf-8", "no-cache", "textContent"},
		{"stylesheet", "GET", "/owner.css", 200, "text/css; charset=utf-8", "no-cache", "@media"},
		{"head", "HEAD", "/", 200, "text/html; charset=utf-8", "no-store", ""},
		{"unknown path", "GET", "/nope", 404, "text/plain; charset=utf-8", "", "not found"},
		{"index.html is not a route", "GET", "/index.html", 404, "text/plain; charset=utf-8", "", "not found"},
		{"api path is not the page's", "GET", "/api/v1/licensing/keys", 404, "text/plain; charset=utf-8", "", "not found"},
		{"post", "POST", "/", 405, "text/plain; charset=utf-8", "", "method not allowed"},
		{"delete asset", "DELETE", "/owner.js", 405, "text/plain; charset=utf-8", "", "method not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			res, body := do(t, srv, tc.method, tc.path, nil)
			is.Equal(res.StatusCode, tc.status)
			is.Equal(res.Header.Get("Content-Type"), tc.contentType)
			is.Equal(res.Header.Get("Content-Security-Policy"), ownerpage.ContentSecurityPolicy) // on every answer
			is.Equal(res.Header.Get("X-Content-Type-Options"), "nosniff")
			is.Equal(res.Header.Get("Referrer-Policy"), "no-referrer")
			is.Equal(res.Header.Get("X-Frame-Options"), "DENY")
			is.Equal(res.Header.Get("Cache-Control"), tc.cacheControl)
			is.Equal(res.Header.Get("ETag") != "", tc.cacheControl == "no-cache") // only what is revalidated has a validator
			is.True(strings.Contains(body, tc.contains))                          // body
			if tc.method == "HEAD" {
				is.Equal(body, "")
			}
			if tc.status == 405 {
				is.Equal(res.Header.Get("Allow"), "GET, HEAD")
			}
		})
	}
}

// The policy is what keeps an injected instance name inert: no inline
// script or style, nothing from another origin, no framing.
func TestContentSecurityPolicy(t *testing.T) {
	is := is.New(t)
	csp := ownerpage.ContentSecurityPolicy
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	is.Equal(directives["default-src"], "'none'")
	is.Equal(directives["script-src"], "'self'")
	is.Equal(directives["style-src"], "'self'")
	is.Equal(directives["connect-src"], "'self'")
	is.Equal(directives["frame-ancestors"], "'none'")
	is.Equal(directives["base-uri"], "'none'")
	is.Equal(directives["form-action"], "'none'")
	is.True(!strings.Contains(csp, "unsafe")) // no 'unsafe-inline' or 'unsafe-eval'
}

// The page itself must obey its policy: no inline script, no inline style,
// no event handler attribute, nothing from another origin.
func TestAssetsObeyThePolicy(t *testing.T) {
	srv := httptest.NewServer(ownerpage.Handler(ownerpage.Config{}))
	defer srv.Close()
	_, page := do(t, srv, "GET", "/", nil)
	_, script := do(t, srv, "GET", "/owner.js", nil)
	tests := []struct {
		name, body, bad string
	}{
		{"inline script", page, "<script>"},
		{"script from elsewhere", page, "src=\"http"},
		{"style element", page, "<style"},
		{"style attribute", page, "style="},
		{"onclick", page, "onclick"},
		{"onload", page, "onload"},
		{"javascript url", page, "javascript:"},
		{"stylesheet from elsewhere", page, "href=\"http"},
		{"innerHTML in the script", script, "innerHTML"},
		{"outerHTML in the script", script, "outerHTML"},
		{"insertAdjacentHTML in the script", script, "insertAdjacentHTML"},
		{"document.write in the script", script, "document.write"},
		{"eval in the script", script, "eval("},
		{"localStorage in the script", script, "localStorage."},
		{"cookie in the script", script, "document.cookie"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			is.True(!strings.Contains(tc.body, tc.bad)) // forbidden by the page's policy or its rules
		})
	}
}

// The script and stylesheet are revalidated; the page, which shows a full
// license key once, is never stored, so a validator from anywhere gets the
// whole page again.
func TestConditionalGet(t *testing.T) {
	srv := httptest.NewServer(ownerpage.Handler(ownerpage.Config{}))
	defer srv.Close()
	for _, path := range []string{"/owner.js", "/owner.css"} {
		t.Run(path, func(t *testing.T) {
			is := is.New(t)
			res, _ := do(t, srv, "GET", path, nil)
			etag := res.Header.Get("ETag")
			is.True(etag != "")
			is.Equal(res.Header.Get("Cache-Control"), "no-cache") // revalidated, so an upgrade shows at once
			res, body := do(t, srv, "GET", path, map[string]string{"If-None-Match": etag})
			is.Equal(res.StatusCode, http.StatusNotModified)
			is.Equal(body, "")
			is.Equal(res.Header.Get("Content-Security-Policy"), ownerpage.ContentSecurityPolicy)
		})
	}
	t.Run("page", func(t *testing.T) {
		is := is.New(t)
		res, _ := do(t, srv, "GET", "/owner.js", nil)
		for _, inm := range []string{res.Header.Get("ETag"), `"anything"`, `W/"x"`} { // even the script's validator
			res, body := do(t, srv, "GET", "/", map[string]string{"If-None-Match": inm, "If-Modified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"})
			is.Equal(res.StatusCode, http.StatusOK)                       // never a 304: there is nothing stored to reuse
			is.Equal(res.Header.Get("Cache-Control"), "no-store")         // and it is not stored now either
			is.True(strings.Contains(body, `<meta name="licensing-api"`)) // the whole page
		}
	})
}

func TestAPIBase(t *testing.T) {
	tests := []struct {
		name, base, want string
	}{
		{"default", "", `content="/api/v1/licensing"`},
		{"custom", "/licensing/api", `content="/licensing/api"`},
		{"trailing slash dropped", "/x/api/", `content="/x/api"`},
		{"ampersand escaped", "/a&b", `content="/a&amp;b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			srv := httptest.NewServer(ownerpage.Handler(ownerpage.Config{APIBase: tc.base}))
			defer srv.Close()
			_, page := do(t, srv, "GET", "/", nil)
			is.True(strings.Contains(page, `<meta name="licensing-api" `+tc.want+`>`)) // the base the script reads
			is.True(!strings.Contains(page, "{{API_BASE}}"))                           // every placeholder filled
		})
	}
}

func TestAPIBaseMisuse(t *testing.T) {
	for _, base := range []string{
		"api", "https://evil.example/api", "//evil.example/api", `/a"><script>alert(1)</script>`,
		"/a b", "/a?x=1", "/a#b", `/\evil.example`,
	} {
		t.Run(base, func(t *testing.T) {
			is := is.New(t)
			defer func() {
				r := recover()
				is.True(r != nil) // construction refuses a base that is not a same-origin path
				is.True(strings.Contains(r.(string), "ownerpage: Config.APIBase"))
			}()
			ownerpage.Handler(ownerpage.Config{APIBase: base})
		})
	}
}

func TestStripPrefix(t *testing.T) {
	is := is.New(t)
	mux := http.NewServeMux()
	mux.Handle("/licenses/", http.StripPrefix("/licenses", ownerpage.Handler(ownerpage.Config{})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, page := do(t, srv, "GET", "/licenses/", nil)
	is.Equal(res.StatusCode, 200)
	is.True(strings.Contains(page, `src="owner.js"`)) // relative, so it resolves under the prefix
	res, _ = do(t, srv, "GET", "/licenses/owner.css", nil)
	is.Equal(res.StatusCode, 200)
}
