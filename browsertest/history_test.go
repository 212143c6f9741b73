package browsertest

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"
)

// TestOwnerPageKeyHistory: a key's History, opened on its card, lists that
// key's events newest first, in words (GET /events?keyId=), pages back
// with "Older events", and shows no other key's events.
func TestOwnerPageKeyHistory(t *testing.T) {
	chromium(t) // skip before building anything
	is := is.New(t)
	srv := startServer(t, config(), ownerToken)
	var created, other struct {
		ID         string `json:"id"`
		LicenseKey string `json:"licenseKey"`
	}
	is.Equal(srv.api(t, "POST", "/keys", true, map[string]any{"instanceName": "History"}, &created), 201)
	is.Equal(srv.api(t, "POST", "/keys", true, map[string]any{"instanceName": "Other"}, &other), 201)
	for range 11 { // 22 renewals: more than a page of 20
		is.Equal(srv.api(t, "PATCH", "/keys/"+created.ID, true, map[string]any{"expiresAt": "2031-01-01T00:00:00Z"}, nil), 200)
		is.Equal(srv.api(t, "PATCH", "/keys/"+created.ID, true, map[string]any{"expiresAt": nil}, nil), 200)
	}
	is.Equal(srv.api(t, "POST", "/keys/"+created.ID+"/jwt", true, nil, nil), 200)
	is.Equal(srv.api(t, "DELETE", "/keys/"+created.ID, true, nil, nil), 200)
	is.Equal(srv.api(t, "DELETE", "/keys/"+other.ID, true, nil, nil), 200)

	tb := openTab(t)
	tb.do(t, chromedp.Navigate(srv.URL+"/"))
	signIn(t, tb, srv.Token, "")
	wait[string](t, tb, field(created.ID, "masked"))
	sel := `#keys > li[data-id="` + created.ID + `"] `
	is.Equal(eval[int](t, tb, card(created.ID)+`.querySelectorAll(".event").length`), 0) // nothing fetched until opened
	tb.do(t, chromedp.Click(chromedp.CSS(sel+".history summary")))
	wait[bool](t, tb, card(created.ID)+`.querySelectorAll(".event").length === 20`)
	texts := func() []string {
		return eval[[]string](t, tb, `[...`+card(created.ID)+`.querySelectorAll(".event-text")].map(e => e.textContent)`)
	}
	got := texts()
	is.Equal(got[0], "Revoked by user-1")              // newest first
	is.Equal(got[1], "Offline token issued by user-1") //
	is.Equal(got[2], "Set to never expire by user-1")
	is.True(strings.HasPrefix(got[3], "Expiry set to ")) // in the browser's zone
	is.True(strings.HasSuffix(got[3], " by user-1"))
	is.True(!eval[bool](t, tb, card(created.ID)+`.querySelector(".history-more").hidden`)) // more to come

	tb.do(t, chromedp.Click(chromedp.CSS(sel+".history-more")))
	wait[bool](t, tb, card(created.ID)+`.querySelectorAll(".event").length === 25`) // 22 renewals, token, revoke, create
	got = texts()
	is.Equal(got[len(got)-1], "Created by user-1") // the oldest last
	is.True(eval[bool](t, tb, card(created.ID)+`.querySelector(".history-more").hidden`))
	for _, text := range got {
		is.True(!strings.Contains(text, other.ID)) // only this key's events
	}
	is.Equal(eval[int](t, tb, card(other.ID)+`.querySelectorAll(".event").length`), 0)
	page := eval[string](t, tb, `document.documentElement.outerHTML`)
	is.True(!strings.Contains(page, created.LicenseKey)) // the history shows masked keys only
	dialogs, problems := tb.seen()
	is.Equal(len(dialogs), 0)
	is.Equal(len(problems), 0) // no exception, no policy violation
}
