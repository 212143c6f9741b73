package browsertest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/matryer/is"
)

// fakeList answers the page's list requests in the browser itself (the
// Fetch domain), as a server that pages would: pages of two keys joined by
// cursors, one 429 on the way. The page and every other request still go to
// the real server.
type fakeList struct {
	mu       sync.Mutex
	requests []*url.URL
	orgs     []string // X-Organization of each request
	limited  bool     // the 429 has been sent
}

// cursors chains the pages; the second cursor needs escaping in a URL.
var cursors = []string{"", "c+2/=&x", "c3"}

func fakeKey(n int) map[string]any {
	return map[string]any{
		"id": fmt.Sprintf("01a21800-0000-7000-8000-00000000000%d", n), "licenseKey": fmt.Sprintf("%08d...%08d", n, n),
		"instanceName": fmt.Sprintf("instance %d", n), "instanceUrl": nil, "active": true,
		"lastValidatedAt": nil, "activatedAt": nil, "createdAt": "2026-02-01T10:30:00+00:00",
	}
}

// answer returns the status, headers and body for one list request.
func (f *fakeList) answer(u *url.URL, org string) (int, map[string]string, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, u)
	f.orgs = append(f.orgs, org)
	cursor := u.Query().Get("cursor")
	page := -1
	for i, c := range cursors {
		if c == cursor {
			page = i
		}
	}
	if page < 0 {
		return 400, nil, []byte(`{"error": "cursor is not valid"}`)
	}
	if page == 2 && !f.limited {
		f.limited = true
		return 429, map[string]string{"Retry-After": "42"}, []byte(`{"error": "Too many requests."}`)
	}
	keys := []any{fakeKey(2*page + 1)}
	next := any(nil)
	if page < 2 {
		keys = append(keys, fakeKey(2*page+2))
		next = cursors[page+1]
	}
	b, _ := json.Marshal(map[string]any{"keys": keys, "nextCursor": next})
	return 200, nil, b
}

func TestLoadMore(t *testing.T) {
	chromium(t) // skip before building anything
	is := is.New(t)
	srv := startServer(t, config(), ownerToken)
	tb := openTab(t)
	f := &fakeList{}
	if _, err := chromedp.Call(tb.ctx, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: "*/api/v1/licensing/keys?*"}},
	}); err != nil {
		t.Fatal(err)
	}
	paused := chromedp.Events(tb.ctx, fetch.RequestPaused)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			u, err := url.Parse(ev.Request.URL)
			if err != nil {
				chromedp.Call(tb.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: "Failed"})
				continue
			}
			org, _ := ev.Request.Headers["X-Organization"].(string)
			status, hdr, body := f.answer(u, org)
			headers := []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}}
			for k, v := range hdr {
				headers = append(headers, &fetch.HeaderEntry{Name: k, Value: v})
			}
			chromedp.Call(tb.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{
				RequestID: ev.RequestID, ResponseCode: int64(status), ResponseHeaders: headers, Body: body,
			})
		}
	}()

	count := `document.querySelectorAll("#keys > li").length`
	tb.do(t, chromedp.Navigate(srv.URL+"/"))
	signIn(t, tb, ownerToken, "org-2")
	is.Equal(wait[int](t, tb, count), 2) // the first page
	is.True(!eval[bool](t, tb, `document.getElementById("more").hidden`))
	is.Equal(eval[string](t, tb, `document.getElementById("status").textContent`), "2 keys shown; more can be loaded.")

	tb.do(t, chromedp.Click(chromedp.ID("more")))
	is.Equal(wait[int](t, tb, count+` === 4 && 4`), 4) // the second page, after the first
	is.True(!eval[bool](t, tb, `document.getElementById("more").hidden`))

	tb.do(t, chromedp.Click(chromedp.ID("more")))
	msg := wait[string](t, tb, errorText)
	is.Equal(msg, "Too many requests while loading the keys. Try again in 42 seconds.") // 429: when to retry
	is.Equal(eval[int](t, tb, count), 4)                                                // what was shown stays
	is.True(!eval[bool](t, tb, `document.getElementById("more").hidden`))               // and can be tried again

	tb.do(t, chromedp.Click(chromedp.ID("more")))
	wait[bool](t, tb, `document.getElementById("more").hidden`) // the last page has nextCursor null
	is.Equal(eval[int](t, tb, count), 5)
	is.True(eval[bool](t, tb, `document.getElementById("error").hidden`))
	names := eval[[]string](t, tb, `[...document.querySelectorAll("#keys > li .instance-name")].map(d => d.textContent)`)
	is.Equal(names, []string{"instance 1", "instance 2", "instance 3", "instance 4", "instance 5"}) // in the server's order

	f.mu.Lock()
	defer f.mu.Unlock()
	is.Equal(len(f.requests), 4)
	for i, u := range f.requests {
		is.Equal(u.Query().Get("limit"), "50") // every request asks for a page
		is.Equal(f.orgs[i], "org-2")           // for the organization signed in with
	}
	got := []string{}
	for _, u := range f.requests {
		got = append(got, u.Query().Get("cursor"))
	}
	is.Equal(strings.Join(got, " | "), " | c+2/=&x | c3 | c3") // each cursor as the server gave it, escaped on the way
}
