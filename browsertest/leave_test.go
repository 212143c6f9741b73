package browsertest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"
)

// storingProxy forwards to the server and answers the page with
// "Cache-Control: no-cache" instead of no-store: Chromium then keeps the page
// in its back/forward cache, as some browsers do even with no-store.
func storingProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(res *http.Response) error {
		if res.Request.URL.Path == "/" {
			res.Header.Set("Cache-Control", "no-cache")
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL
}

// The page shows a new key once: "after you leave or reload this page, only
// its first and last 8 characters remain". The owner creates a key, goes to
// another page in the same tab and presses Back: the page comes back without
// the key, whether the browser loads it again (the page is no-store) or
// restores it from its back/forward cache (the script forgets the key on
// pagehide).
func TestKeyGoneAfterLeavingAndBack(t *testing.T) {
	chromium(t) // skip before building anything
	srv := startServer(t, "", "")
	tests := []struct {
		name     string
		base     string
		restored bool // the browser must restore the page from its back/forward cache
	}{
		{"the page as served (no-store)", srv.URL, false},
		{"a browser that keeps the page in its back/forward cache", storingProxy(t, srv.URL), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			tb := openTab(t)
			tb.do(t, chromedp.Navigate(tc.base+"/"))
			signIn(t, tb, srv.Token, "")
			wait[bool](t, tb, `!document.getElementById("app").hidden`)
			tb.do(t, chromedp.Click(chromedp.ID("create")))
			key := wait[string](t, tb, `document.getElementById("new-key-value").value`)
			is.True(fullKey.MatchString(key)) // the key is shown once
			wait[bool](t, tb, `document.getElementById("status").textContent.startsWith("Key created")`)

			tb.do(t, chromedp.Evaluate[chromedp.Void](`window.marker = "the same document"; window.addEventListener("pageshow", e => { window.persisted = e.persisted })`))
			tb.do(t, chromedp.Navigate(tc.base+"/healthz"))
			tb.do(t, chromedp.Evaluate[chromedp.Void](`history.back()`))
			for i := 0; ; i++ { // the execution context changes under the back navigation
				ok, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`location.pathname === "/" && document.readyState === "complete" && document.getElementById("keys")?.children.length > 0`))
				if err == nil && ok {
					break
				}
				if i == 100 {
					t.Fatal("the page did not come back:", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
			restored := eval[bool](t, tb, `window.marker === "the same document" && window.persisted === true`)
			t.Logf("restored from the back/forward cache: %v", restored)
			if tc.restored {
				is.True(restored) // else this case tests nothing the first does not
			}
			is.Equal(eval[string](t, tb, `document.getElementById("new-key-value").value`), "") // the key is gone after leaving
			is.True(eval[bool](t, tb, `document.getElementById("new-key").hidden`))             // only the masked key remains
			page := eval[string](t, tb, `document.documentElement.outerHTML + [...document.querySelectorAll("input")].map(i => i.value).join()`)
			is.True(!strings.Contains(page, key))                                                                  // nowhere in the page
			is.True(strings.Contains(eval[string](t, tb, `document.getElementById("keys").textContent`), key[:8])) // the masked key is listed
			is.True(!strings.Contains(eval[string](t, tb, `document.getElementById("status").textContent`), "Copy it now"))
			dialogs, problems := tb.seen()
			is.Equal(len(dialogs)+len(problems), 0)
		})
	}
}
