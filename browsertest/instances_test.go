package browsertest

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"
)

// instancesOf returns the ids of the instances that hold a seat on key id,
// as the server lists them.
func instancesOf(t *testing.T, srv *server, id string) []string {
	t.Helper()
	var list struct {
		Instances []struct {
			ID string `json:"id"`
		} `json:"instances"`
	}
	if status := srv.api(t, "GET", "/keys/"+id+"/instances", true, nil, &list); status != 200 {
		t.Fatalf("instances: %d", status)
	}
	ids := []string{}
	for _, in := range list.Instances {
		ids = append(ids, in.ID)
	}
	return ids
}

// TestOwnerPageInstances: a key's card shows its seat limit; the owner
// lists its instances (names from instances shown as text, with their last
// sighting) and frees a seat, which a refused instance then takes.
func TestOwnerPageInstances(t *testing.T) {
	chromium(t) // skip before building anything
	srv := startServer(t, config(), ownerToken)
	tb := openTab(t)
	is := is.New(t)

	var created struct {
		ID         string `json:"id"`
		LicenseKey string `json:"licenseKey"`
	}
	is.Equal(srv.api(t, "POST", "/keys", true, map[string]any{"instanceName": "Seats", "maxInstances": 2}, &created), 201)
	keyID, key := created.ID, created.LicenseKey
	validate := func(fields map[string]any) int {
		body := map[string]any{"licenseKey": key}
		for k, v := range fields {
			body[k] = v
		}
		return srv.api(t, "POST", "/validate", false, body, nil)
	}
	is.Equal(validate(map[string]any{"instanceId": "inst-a", "instanceName": hostile, "instanceUrl": "https://a.example"}), 200)
	is.Equal(validate(map[string]any{"instanceUrl": "https://B.example/"}), 200) // no instanceId: counted by its URL
	is.Equal(validate(map[string]any{"instanceId": "inst-c"}), 403)              // every seat taken

	tb.do(t, chromedp.Navigate(srv.URL+"/"))
	signIn(t, tb, srv.Token, "")
	is.Equal(wait[string](t, tb, field(keyID, "seats")), "at most 2 instances")
	sel := `#keys > li[data-id="` + keyID + `"] `
	is.True(eval[bool](t, tb, card(keyID)+`.querySelector(".instances-panel").hidden`)) // listed on demand
	tb.do(t, chromedp.Click(chromedp.CSS(sel+".show-instances")))
	is.Equal(wait[float64](t, tb, card(keyID)+`.querySelectorAll(".instance").length === 2 && 2`), 2.0)
	ids := eval[string](t, tb, `[...`+card(keyID)+`.querySelectorAll(".instance")].map(i => i.dataset.id).join(" ")`)
	is.True(strings.Contains(ids, "inst-a"))
	is.True(strings.Contains(ids, "https://b.example")) // the normalized URL
	instA := card(keyID) + `.querySelector('.instance[data-id="inst-a"]')`
	is.Equal(eval[string](t, tb, instA+`.querySelector(".instance-label").textContent`), hostile) // shown as text
	is.Equal(eval[float64](t, tb, `document.querySelectorAll("#keys img").length`), 0.0)          // never parsed as HTML
	is.Equal(eval[string](t, tb, instA+`.querySelector(".instance-url").textContent`), "https://a.example")
	is.True(eval[string](t, tb, instA+`.querySelector(".last-seen time")?.dateTime ?? ""`) != "") // when it was last seen
	is.Equal(eval[string](t, tb, card(keyID)+`.querySelector(".show-instances").getAttribute("aria-expanded")`), "true")

	tb.do(t, chromedp.Click(chromedp.CSS(sel+`.instance[data-id="https://b.example"] .release`)))
	is.Equal(wait[float64](t, tb, card(keyID)+`.querySelectorAll(".instance").length === 1 && 1`), 1.0)
	is.True(strings.Contains(eval[string](t, tb, `document.getElementById("status").textContent`), "freed"))
	is.Equal(instancesOf(t, srv, keyID), []string{"inst-a"})        // freed on the server
	is.Equal(validate(map[string]any{"instanceId": "inst-c"}), 200) // the freed seat is taken

	tb.do(t, chromedp.Click(chromedp.CSS(sel+".show-instances"))) // hide, then list again
	is.True(eval[bool](t, tb, card(keyID)+`.querySelector(".instances-panel").hidden`))
	tb.do(t, chromedp.Click(chromedp.CSS(sel+".show-instances")))
	is.Equal(wait[float64](t, tb, card(keyID)+`.querySelectorAll(".instance").length === 2 && 2`), 2.0)
	is.Equal(eval[string](t, tb, card(keyID)+`.querySelector(".instance").dataset.id`), "inst-c") // most recently seen first

	dialogs, problems := tb.seen()
	is.Equal(len(dialogs), 0)
	is.Equal(len(problems), 0) // no exception, no policy violation
}
