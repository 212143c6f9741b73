package browsertest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"
)

// The page calls the API at APIBase (/api/v1/licensing by default). Mounted
// where that path does not reach the API, as under a prefix without
// APIBase, the page says it could not reach the API at that URL and that
// APIBase must be set: not "not found", which reads as "no keys", and it
// never shows the empty list.
func TestWrongAPIPathIsNotAnEmptyList(t *testing.T) {
	chromium(t) // skip before building anything
	srv := startServer(t, config(), ownerToken)
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	// api404 sends the API paths to paths the API does not have: its own
	// JSON 404, {"error": "Not found."}.
	api404 := httputil.NewSingleHostReverseProxy(target)
	director := api404.Director
	api404.Director = func(r *http.Request) {
		director(r)
		r.URL.Path = strings.Replace(r.URL.Path, "/api/v1/licensing/", "/api/v1/licensing/v2/", 1)
	}
	tests := []struct {
		name   string
		mount  func(mux *http.ServeMux)
		answer string // how the message says what answered
	}{
		{"page under a prefix, API not at the default path", func(mux *http.ServeMux) {
			mux.Handle("/billing/", http.StripPrefix("/billing", forward)) // everything else: the mux's text 404
		}, "GET /api/v1/licensing/keys answered 404 and not as the API does."},
		{"a catch-all answers the API path with a page", func(mux *http.ServeMux) {
			mux.Handle("/billing/", http.StripPrefix("/billing", forward))
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<!doctype html><title>App</title>"))
			})
		}, "GET /api/v1/licensing/keys answered 200 with something other than JSON."},
		{"the API's own 404 for a path it does not have", func(mux *http.ServeMux) {
			mux.Handle("/billing/", http.StripPrefix("/billing", forward))
			mux.Handle("/api/", api404)
		}, "GET /api/v1/licensing/keys answered 404 (a path the API does not have)."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			mux := http.NewServeMux()
			tc.mount(mux)
			front := httptest.NewServer(mux)
			defer front.Close()
			tb := openTab(t)
			tb.do(t, chromedp.Navigate(front.URL+"/billing/"))
			signIn(t, tb, ownerToken, "")
			msg := wait[string](t, tb, errorText)
			t.Logf("shown: %q", msg)
			is.True(strings.Contains(msg, "could not reach the licensing API at "+front.URL+"/api/v1/licensing while loading the keys")) // the URL it tried
			is.True(strings.Contains(msg, tc.answer))                                                                                    // what answered there
			is.True(strings.Contains(msg, "sets APIBase (ownerpage.Config.APIBase)"))                                                    // and the fix
			is.True(!strings.Contains(msg, "does not exist"))
			is.True(eval[bool](t, tb, `document.getElementById("empty").hidden`)) // no "no keys yet"
			is.Equal(eval[int](t, tb, `document.querySelectorAll("#keys > li").length`), 0)
			is.True(!eval[bool](t, tb, `document.getElementById("app").hidden`)) // still signed in: the token is not the problem
			dialogs, problems := tb.seen()
			is.Equal(len(dialogs)+len(problems), 0)
		})
	}
}
