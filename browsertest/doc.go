// Package browsertest holds the owner page's browser test: it builds the
// reference server, starts it on a free port with a fresh data directory,
// and drives Debian's headless Chromium through the page with chromedp.
//
// It is its own module so that the root module never requires chromedp; it
// requires the root module through a replace directive (../), and imports
// the server's package so that go test's cache sees changes to the server
// and the page. TestLoadMore answers the list requests inside the browser,
// as a server with paging would, to check Load more and a 429;
// TestKeyGoneAfterLeavingAndBack also goes through a proxy that lets Chromium
// keep the page in its back/forward cache. Run it from this directory:
//
//	go test ./...
//	UPDATE_SCREENSHOTS=1 go test ./...   # also rewrites ../docs/owner-page-*.png
//
// The test skips when Chromium is missing (set CHROMIUM to its path if it is
// not /usr/bin/chromium or on PATH as chromium), except when CI is set: then
// it fails.
package browsertest
