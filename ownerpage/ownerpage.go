// Package ownerpage is a browser page for organization owners: sign in with
// a bearer token, list, create and revoke license keys, and download offline
// tokens. It talks to the licensing HTTP API (package licensing's Handler) on
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
//	mux.Handle("/api/v1/licensing/", licensing.NewHandler(svc, auth))
//	mux.Handle("/", ownerpage.Handler(ownerpage.Config{}))
//
// or under a prefix, with the prefix stripped:
//
//	mux.Handle("/licenses/", http.StripPrefix("/licenses", ownerpage.Handler(ownerpage.Config{})))
//
// (With Go's ServeMux, use the method-less pattern "/": "GET /" conflicts
// with the method-less API prefix.)
//
// # Security model
//
// The owner's token lives in the tab's sessionStorage only: never in a URL,
// a cookie or local storage, and it is sent only as an Authorization header
// to the API. Every answer of this handler carries a Content-Security-Policy
// that allows scripts, styles and requests from the page's own origin only,
// no inline script or style, and no framing; values that self-hosted
// instances report (names, URLs, metric names) are inserted as text, and a
// URL becomes a link only when its scheme is http or https. A full license
// key is shown once, right after it is created, and kept only in the page's
// memory.
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
	body        []byte
	contentType string
	etag        string
}

func newAsset(body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

type handler struct {
	assets map[string]asset
}

// Handler returns the http.Handler that serves the owner page. It answers
// GET and HEAD for "/", "/owner.js" and "/owner.css", 405 for other methods
// on those paths, and 404 for any other path; every answer carries
// ContentSecurityPolicy, "X-Content-Type-Options: nosniff" and
// "Referrer-Policy: no-referrer". It panics when cfg.APIBase is not an
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
		"/":          newAsset(page, "text/html; charset=utf-8"),
		"/owner.js":  newAsset(ownerJS, "text/javascript; charset=utf-8"),
		"/owner.css": newAsset(ownerCSS, "text/css; charset=utf-8"),
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
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
