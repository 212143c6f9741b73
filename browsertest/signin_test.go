package browsertest

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/matryer/is"
)

// An organization id goes in a request header, which a browser builds only
// from Latin-1 text and the server reads as ASCII. One that cannot be sent is
// refused at sign-in, in plain words that name the organization id, and not
// blamed on the network.
func TestOrganizationIDNotSendable(t *testing.T) {
	chromium(t) // skip before building anything
	srv := startServer(t, config(), ownerToken)
	tb := openTab(t)
	tb.do(t, chromedp.Navigate(srv.URL+"/"))
	tests := []struct {
		name, org, shown string // shown: how the message names the character
	}{
		{"Cyrillic: fetch refuses it", "организация", "“о” (U+043E)"},
		{"Latin-1: fetch sends it, the server reads other bytes", "org-é", "“é” (U+00E9)"},
		{"an invisible character", "org-1\u200b", "an invisible character (U+200B)"},
		{"a tab inside", "org\t1", "a space or line break (U+0009)"},
		{"an emoji", "org-😀", "“😀” (U+1F600)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			signIn(t, tb, srv.Token, tc.org)
			msg := wait[string](t, tb, errorText)
			t.Logf("shown: %q", msg)
			is.True(!strings.Contains(msg, "Could not reach"))                  // not blamed on the network
			is.True(strings.Contains(msg, "The organization id"))               // the organization id is named as the problem
			is.True(strings.Contains(msg, tc.shown))                            // and the character that is wrong
			is.True(eval[bool](t, tb, `document.getElementById("app").hidden`)) // not signed in
			is.Equal(eval[int](t, tb, `sessionStorage.length`), 0)              // nothing kept
			is.Equal(eval[string](t, tb, `document.activeElement.id`), "org")   // the field to correct has the focus
			is.Equal(eval[string](t, tb, `document.getElementById("org").value`), tc.org)
		})
	}

	t.Run("corrected, it signs in", func(t *testing.T) {
		is := is.New(t)
		signIn(t, tb, srv.Token, "  org-2 ") // spaces around are trimmed
		tb.do(t, chromedp.WaitVisible(chromedp.ID("empty")))
		is.Equal(eval[string](t, tb, `document.getElementById("who-text").textContent`), "Beta SRL") // org-2's name
		is.True(eval[bool](t, tb, `document.getElementById("error").hidden`))                        // the message goes once it is solved
	})

	// Saved credentials that cannot be sent (saved by an older page, or
	// edited): the request is refused by the page (and, were it not, by the
	// browser), which says so and signs out, the organization id left in the
	// form to correct.
	t.Run("saved organization id", func(t *testing.T) {
		is := is.New(t)
		tb.do(t, chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("licensing.organization", "организация")`), chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		msg := wait[string](t, tb, errorText)
		t.Logf("shown: %q", msg)
		is.True(!strings.Contains(msg, "Could not reach"))
		is.True(strings.Contains(msg, "The organization id"))
		is.True(strings.Contains(msg, "Sign in again"))
		is.True(eval[bool](t, tb, `document.getElementById("app").hidden`))
		is.Equal(eval[int](t, tb, `sessionStorage.length`), 0)
		is.Equal(eval[string](t, tb, `document.getElementById("org").value`), "организация")
	})

	t.Run("saved token", func(t *testing.T) {
		is := is.New(t)
		signIn(t, tb, srv.Token, "org-1")
		tb.do(t, chromedp.WaitVisible(chromedp.ID("empty")))
		tb.do(t, chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("licensing.ownerToken", "lk_тoken")`), chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		msg := wait[string](t, tb, errorText)
		t.Logf("shown: %q", msg)
		is.True(!strings.Contains(msg, "Could not reach"))
		is.True(strings.Contains(msg, "token"))
		is.True(strings.Contains(msg, "Sign in again"))
		is.True(eval[bool](t, tb, `document.getElementById("app").hidden`))
		is.Equal(eval[int](t, tb, `sessionStorage.length`), 0)
	})

	// A request the network fails is still said to be one.
	t.Run("the server out of reach", func(t *testing.T) {
		is := is.New(t)
		signIn(t, tb, srv.Token, "org-1")
		tb.do(t, chromedp.WaitVisible(chromedp.ID("empty")))
		block := func(patterns ...string) {
			list := []*network.BlockPattern{}
			for _, p := range patterns {
				list = append(list, &network.BlockPattern{URLPattern: p, Block: true})
			}
			_, err := chromedp.Call(tb.ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: list})
			is.NoErr(err)
		}
		block("*://*:*/api/v1/licensing/*", "*://*:*/api/v1/licensing/*\\?*")
		tb.do(t, chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		msg := wait[string](t, tb, errorText)
		is.True(strings.HasPrefix(msg, "Could not reach the licensing server")) // a network failure, said so
		is.True(!eval[bool](t, tb, `document.getElementById("app").hidden`))    // still signed in: it may pass
		block()
		tb.do(t, chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		wait[bool](t, tb, `document.getElementById("error").hidden`)
	})

	// Past the page's own checks, a request the browser refuses to build
	// (here: Request wrapped to add a header it cannot send) is told apart
	// from a network failure: fetch rejects both with a TypeError.
	t.Run("a request the browser refuses to build", func(t *testing.T) {
		is := is.New(t)
		tb.do(t, chromedp.Evaluate[chromedp.Void](`window.Request = (R => function (u, init) {
			return new R(u, Object.assign({}, init, {headers: Object.assign({}, init.headers, {"X-Test": "организация"})}));
		})(window.Request)`), chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		msg := wait[string](t, tb, errorText)
		t.Logf("shown: %q", msg)
		is.True(strings.HasPrefix(msg, "This browser refused to send the request")) // what happened
		is.True(!strings.Contains(msg, "Could not reach"))                          // not blamed on the network
		is.True(!eval[bool](t, tb, `document.getElementById("app").hidden`))        // the credentials are not the problem
		tb.do(t, chromedp.Reload())
		wait[bool](t, tb, `document.getElementById("status").textContent === "0 keys."`)
		is.True(eval[bool](t, tb, `document.getElementById("error").hidden`))
	})
	dialogs, problems := tb.seen()
	if len(dialogs)+len(problems) > 0 {
		t.Errorf("dialogs %q, problems %q", dialogs, problems)
	}
}

// The token is never in a URL. With the script not run (blocked, failed to
// load, or not yet run when the owner presses Enter), the sign-in form, which
// has named fields and no method, would submit itself as GET /?token=...; the
// policy's form-action 'none' stops it.
func TestTokenNotInURLWithoutScript(t *testing.T) {
	is := is.New(t)
	chromium(t)
	srv := startServer(t, "", "")
	tb := openTab(t)
	_, err := chromedp.Call(tb.ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: []*network.BlockPattern{{URLPattern: "*://*:*/owner.js", Block: true}}}) // owner.js fails to load
	is.NoErr(err)
	tb.do(t, chromedp.Navigate(srv.URL+"/"))
	is.Equal(eval[string](t, tb, `document.getElementById("tz").textContent`), "") // owner.js did not run
	tb.do(t, setValue("token", srv.Token), chromedp.Evaluate[chromedp.Void](`document.getElementById("sign-in-form").requestSubmit()`))
	time.Sleep(time.Second) // a navigation, if any, to happen
	loc, err := chromedp.Run(tb.ctx, chromedp.Location())
	is.NoErr(err)
	t.Logf("location: %s", loc)
	is.True(!strings.Contains(loc, "token")) // the token is not in the URL
}

// The header names the organization whose keys the page shows, by the name
// the server knows it by: the owner's default one without an organization
// id, the chosen one with it, and its id for one without a name.
func TestHeaderNamesTheOrganization(t *testing.T) {
	chromium(t) // skip before building anything
	cfg := strings.Replace(config(), `{"id": "org-2", "name": "Beta SRL",`, `{"id": "org-2", "name": "",`, 1)
	srv := startServer(t, cfg, ownerToken)
	tb := openTab(t)
	tb.do(t, chromedp.Navigate(srv.URL+"/"))
	who := `document.getElementById("who-text").textContent`
	for _, tc := range []struct{ org, want string }{
		{"", "Acme SRL"},                // the default organization, by its name
		{"org-2", "Organization org-2"}, // no name: its id
		{"org-1", "Acme SRL"},           // chosen by id, shown by name
	} {
		t.Run("org "+tc.org, func(t *testing.T) {
			is := is.New(t)
			signIn(t, tb, ownerToken, tc.org)
			tb.do(t, chromedp.WaitVisible(chromedp.ID("empty")))
			// The header may first show the id typed at sign-in; it ends with
			// the name and id (its title) that the list answer gives.
			title := map[string]string{"": "org-1"}[tc.org] + tc.org
			is.True(wait[bool](t, tb, who+` === `+strconv.Quote(tc.want)+` && document.getElementById("who-text").title === `+strconv.Quote(title)))
			tb.do(t, chromedp.Click(chromedp.ID("sign-out")))
			tb.do(t, chromedp.WaitVisible(chromedp.ID("token")))
			is.Equal(eval[string](t, tb, who+` + document.getElementById("who-text").title`), "") // forgotten with the token
		})
	}
}
