// Package ownerpage is a browser page for organization owners: sign in with
// a bearer token, list, create and revoke license keys, download offline
// tokens, and see a key's instances and free their seats. It talks to the licensing HTTP API (package licensing's Handler) on
// the same origin and is one HTML file, one script and one stylesheet
// embedded in the binary: no build step, no framework, nothing loaded from
// another origin.
//
// # Mounting
//
// The handler serves "/", "/owner.js" and "/owner.css" and answers 404 for
// every other path, so it can sit at the root of a ServeMux next to the API:
//
//	mux := http.NewServeMux()
//	mux.Handle("/api/v1/licensing/", licensing.NewHandler(svc, auth, licensing.HandlerConfig{}))
//	mux.Handle("/", ownerpage.Handler(ownerpage.Config{}))
//
// or under a prefix, with the prefix stripped:
//
//	mux.Handle("/licenses/", http.StripPrefix("/licenses", ownerpage.Handler(ownerpage.Config{})))
//
// (With Go's ServeMux, use the method-less pattern "/": "GET /" conflicts
// with the method-less API prefix.) The page calls the API at
// Config.APIBase, /api/v1/licensing by default, whatever path the page
// itself is served at: when the API is mounted elsewhere (under a prefix of
// its own), set APIBase. A page that reaches something other than the API
// there says so, naming the URL, instead of showing an empty list.
//
// # Security model
//
// The owner's token lives in the tab's sessionStorage only: never in a URL,
// a cookie or local storage, and it is sent only as an Authorization header
// to the API. Every answer of this handler carries a Content-Security-Policy
// that allows scripts, styles and requests from the page's own origin only,
// no inline script or style, and no framing; values that self-hosted
// instances report (names, URLs, metric names) are inserted as text, and a
// URL becomes a link only when its scheme is http or https, and opens in a
// new tab that gets no reference to the page. A full license key is shown
// once, right after it is created, and kept only in the page's memory: the
// page is served with "Cache-Control: no-store", and the script clears the
// key when the page is left (pagehide), so Back does not bring it back, even
// from a browser's back/forward cache.
package ownerpage

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"html"
	"net/http"
	"strings"
	"time"
)

// DefaultAPIBase is the API path the page calls when Config.APIBase is empty.
const DefaultAPIBase = "/api/v1/licensing"

// ContentSecurityPolicy is the Content-Security-Policy of every answer of
// the handler: same-origin scripts, styles, images and requests, nothing
// inline, no plugins, no <base>, no form posts, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Config configures Handler. The zero value is ready to use.
type Config struct {
	// APIBase is the absolute path, on the page's own origin, where the
	// licensing API is mounted; DefaultAPIBase when empty. It must start
	// with a single "/": the page's policy forbids other origins.
	APIBase string
}

var (
	//go:embed index.html
	indexHTML []byte
	//go:embed owner.js
	ownerJS []byte
	//go:embed owner.css
	ownerCSS []byte
)

type asset struct {
	body         []byte
	contentType  string
	cacheControl string
	etag         string // empty when the answer is not stored, so never revalidated
}

// The page itself is never stored: a stored page can come back (Back
// button, back/forward cache) with a full license key on screen. The script
// and stylesheet hold no secret; they are revalidated on every use, so an
// upgrade shows at once.
const (
	pageCacheControl  = "no-store"
	assetCacheControl = "no-cache"
)

func newAsset(body []byte, contentType, cacheControl string) asset {
	a := asset{body: body, contentType: contentType, cacheControl: cacheControl}
	if cacheControl != pageCacheControl {
		sum := sha256.Sum256(body)
		a.etag = `"` + hex.EncodeToString(sum[:12]) + `"`
	}
	return a
}

type handler struct {
	assets map[string]asset
}

// Handler returns the http.Handler that serves the owner page. It answers
// GET and HEAD for "/", "/owner.js" and "/owner.css", 405 for other methods
// on those paths, and 404 for any other path; every answer carries
// ContentSecurityPolicy, "X-Content-Type-Options: nosniff" and
// "Referrer-Policy: no-referrer". The page ("/") is sent with
// "Cache-Control: no-store" and no ETag, so no cache keeps it; the script and
// stylesheet with "Cache-Control: no-cache" and an ETag, so they are
// revalidated (If-None-Match, 304) on every use. It panics when cfg.APIBase is not an
// absolute path on the same origin (a programming error).
func Handler(cfg Config) http.Handler {
	base := cfg.APIBase
	if base == "" {
		base = DefaultAPIBase
	}
	base = strings.TrimRight(base, "/")
	if !strings.HasPrefix(base, "/") || strings.HasPrefix(base, "//") || strings.ContainsAny(base, "\\?#\"'<> \t\r\n") {
		panic("ownerpage: Config.APIBase must be an absolute path such as " + DefaultAPIBase + ", got " + cfg.APIBase)
	}
	page := bytes.Replace(indexHTML, []byte("{{API_BASE}}"), []byte(html.EscapeString(base)), -1)
	return &handler{assets: map[string]asset{
		"/":          newAsset(page, "text/html; charset=utf-8", pageCacheControl),
		"/owner.js":  newAsset(ownerJS, "text/javascript; charset=utf-8", assetCacheControl),
		"/owner.css": newAsset(ownerCSS, "text/css; charset=utf-8", assetCacheControl),
	}}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	a, ok := h.assets[r.URL.Path]
	if !ok {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", a.cacheControl)
	if a.etag != "" {
		hdr.Set("ETag", a.etag)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
