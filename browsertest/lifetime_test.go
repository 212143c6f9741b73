package browsertest

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"
)

// lifetimeKey is a list item with the lifetime fields.
type lifetimeKey struct {
	ID          string  `json:"id"`
	LicenseKey  string  `json:"licenseKey"`
	ExpiresAt   *string `json:"expiresAt"`
	RotatedTo   *string `json:"rotatedTo"`
	RotatedFrom *string `json:"rotatedFrom"`
}

// listLifetime returns the server's list of keys by id.
func listLifetime(t *testing.T, srv *server) map[string]lifetimeKey {
	t.Helper()
	var list struct {
		Keys []lifetimeKey `json:"keys"`
	}
	if status := srv.api(t, "GET", "/keys", true, nil, &list); status != 200 {
		t.Fatalf("list: %d", status)
	}
	out := map[string]lifetimeKey{}
	for _, k := range list.Keys {
		out[k.ID] = k
	}
	return out
}

// TestOwnerPageKeyLifetime: the owner page creates a key with an expiry
// (the end of the chosen day in the browser's zone), shows it, renews it
// (a later day, never), marks an expired key, and rotates a key: the new
// key is shown once, like a created one, and both cards say which replaced
// which.
func TestOwnerPageKeyLifetime(t *testing.T) {
	chromium(t) // skip before building anything
	srv := startServer(t, config(), ownerToken)
	tb := openTab(t)
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	var keyID, key string
	step := func(name string, f func(t *testing.T)) {
		if t.Failed() {
			return
		}
		t.Run(name, f)
	}
	day := time.Now().In(loc).AddDate(0, 0, 30)
	endOf := func(d time.Time) string {
		return time.Date(d.Year(), d.Month(), d.Day(), 23, 59, 59, 0, loc).UTC().Format("2006-01-02T15:04:05+00:00")
	}

	step("create a key that expires", func(t *testing.T) {
		is := is.New(t)
		tb.do(t, chromedp.Navigate(srv.URL+"/"))
		signIn(t, tb, srv.Token, "")
		tb.do(t, chromedp.WaitVisible(chromedp.ID("empty")),
			setValue("instance-name", "Expiring"), setValue("expires-on", day.Format("2006-01-02")),
			chromedp.Click(chromedp.ID("create")))
		key = wait[string](t, tb, `!document.getElementById("new-key").hidden && document.getElementById("new-key-value").value`)
		is.True(fullKey.MatchString(key))
		keyID = wait[string](t, tb, `document.querySelector("#keys > li")?.dataset.id`)
		got := listLifetime(t, srv)[keyID]
		is.True(got.ExpiresAt != nil)
		is.Equal(*got.ExpiresAt, endOf(day)) // the end of the chosen day in the browser's zone
		shown := wait[string](t, tb, field(keyID, "expires"))
		is.True(strings.Contains(shown, day.Format("2 Jan 2006"))) // in the browser's zone
		is.True(strings.Contains(shown, "23:59"))
		is.Equal(eval[string](t, tb, field(keyID, "rotation")), "none")
		is.Equal(eval[string](t, tb, field(keyID, "badge")), "Active")
	})

	step("a day in the past is refused before anything is sent", func(t *testing.T) {
		is := is.New(t)
		past := time.Now().In(loc).AddDate(0, 0, -2).Format("2006-01-02")
		tb.do(t, chromedp.Click(chromedp.ID("new-key-done")), setValue("expires-on", past), chromedp.Click(chromedp.ID("create")))
		msg := wait[string](t, tb, errorText)
		is.True(strings.Contains(msg, "must be a day in the future"))
		is.Equal(len(listLifetime(t, srv)), 1) // nothing created
		tb.do(t, setValue("expires-on", ""))
	})

	step("renew: a later day, then never", func(t *testing.T) {
		is := is.New(t)
		later := day.AddDate(0, 2, 0)
		sel := `#keys > li[data-id="` + keyID + `"] `
		tb.do(t, setValueCSS(sel+".renew-date", later.Format("2006-01-02")), chromedp.Click(chromedp.CSS(sel+".renew")))
		wait[string](t, tb, field(keyID, "expires")+`.includes(`+jsString(later.Format("2 Jan 2006"))+`) && "ok"`)
		got := listLifetime(t, srv)[keyID]
		is.Equal(*got.ExpiresAt, endOf(later))
		is.True(strings.Contains(eval[string](t, tb, `document.getElementById("status").textContent`), "now expires"))

		tb.do(t, chromedp.Click(chromedp.CSS(sel+".renew-never")))
		is.Equal(wait[string](t, tb, field(keyID, "expires")+` === "never" && "ok"`), "ok")
		is.True(listLifetime(t, srv)[keyID].ExpiresAt == nil) // cleared on the server
	})

	step("an expired key is marked and can be renewed", func(t *testing.T) {
		is := is.New(t)
		is.Equal(srv.api(t, "PATCH", "/keys/"+keyID, true, map[string]any{"expiresAt": "2020-01-01T00:00:00Z"}, nil), 200)
		is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{"licenseKey": key}, nil), 401) // it stopped
		tb.do(t, chromedp.Click(chromedp.ID("refresh")))
		is.Equal(wait[string](t, tb, field(keyID, "badge")+` === "Expired" && "ok"`), "ok")
		is.True(eval[bool](t, tb, card(keyID)+`.querySelector(".rotate").hidden`)) // renew before rotating
		sel := `#keys > li[data-id="` + keyID + `"] `
		tb.do(t, setValueCSS(sel+".renew-date", day.Format("2006-01-02")), chromedp.Click(chromedp.CSS(sel+".renew")))
		is.Equal(wait[string](t, tb, field(keyID, "badge")+` === "Active" && "ok"`), "ok")
		is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{"licenseKey": key}, nil), 200) // valid again
	})

	step("rotate: the new key once, both cards linked", func(t *testing.T) {
		is := is.New(t)
		sel := `#keys > li[data-id="` + keyID + `"] `
		tb.do(t, chromedp.Click(chromedp.CSS(sel+".rotate")))
		is.True(!eval[bool](t, tb, card(keyID)+`.querySelector(".confirm-rotation").hidden`)) // asked first
		is.Equal(eval[string](t, tb, card(keyID)+`.querySelector(".overlap").value`), "168")  // 7 days unless chosen
		tb.do(t, chromedp.SetValue(chromedp.CSS(sel+".overlap"), "24"), chromedp.Click(chromedp.CSS(sel+".confirm-rotate")))
		newKey := wait[string](t, tb, `!document.getElementById("new-key").hidden && document.getElementById("new-key-value").value`)
		is.True(fullKey.MatchString(newKey))
		is.True(newKey != key)
		note := eval[string](t, tb, `document.getElementById("new-key-rotated").textContent`)
		is.True(strings.Contains(note, key[:8]+"..."+key[56:])) // says which key it replaces
		is.True(strings.Contains(note, "24 hours"))

		keys := listLifetime(t, srv)
		old := keys[keyID]
		is.True(old.RotatedTo != nil)
		newID := *old.RotatedTo
		is.Equal(*keys[newID].RotatedFrom, keyID)
		is.Equal(*keys[newID].ExpiresAt, endOf(day)) // the new key took the expiry over
		// the list is reloaded after the new key is shown: wait for the new cards
		is.Equal(wait[string](t, tb, field(keyID, "rotation")+` === `+jsString("Replaced by key "+newID)+` && "ok"`), "ok")
		is.Equal(wait[string](t, tb, field(newID, "rotation")+` === `+jsString("Replaces key "+keyID)+` && "ok"`), "ok")
		is.True(eval[bool](t, tb, card(keyID)+`.querySelector(".rotate").hidden`))      // rotated once
		is.True(eval[bool](t, tb, card(keyID)+`.querySelector(".renew-never").hidden`)) // the replaced key still stops by itself (the API refuses never, 409)
		is.True(!eval[bool](t, tb, card(newID)+`.querySelector(".renew-never").hidden`))
		is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{"licenseKey": newKey}, nil), 200)
		is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{"licenseKey": key}, nil), 200) // within the overlap

		stored := eval[string](t, tb, `JSON.stringify(sessionStorage) + JSON.stringify(localStorage) + document.cookie + location.href`)
		is.True(!strings.Contains(stored, newKey)) // kept nowhere but on screen
		tb.do(t, chromedp.Reload())
		wait[string](t, tb, field(newID, "masked"))
		page := eval[string](t, tb, `document.documentElement.outerHTML + [...document.querySelectorAll("input")].map(i => i.value).join()`)
		is.True(!strings.Contains(page, newKey)) // gone after a reload, as a created key
		dialogs, problems := tb.seen()
		is.Equal(len(dialogs), 0)
		is.Equal(len(problems), 0) // no exception, no policy violation
	})
}

// setValueCSS sets the value of the form field that sel selects.
func setValueCSS(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.querySelector(` + jsString(sel) + `).value = ` + jsString(value))
}
