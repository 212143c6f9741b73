package browsertest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/matryer/is"
)

// The page is readable at 360 px wide with the longest
// values an instance may send: a 255-character name and URL without a space,
// 32 metrics with 64-character names, and the violations they cause.
func TestNarrowWithLongestValues(t *testing.T) {
	is := is.New(t)
	chromium(t)
	srv := startServer(t, "", "")
	var created struct {
		LicenseKey string `json:"licenseKey"`
	}
	is.Equal(srv.api(t, "POST", "/keys", true, map[string]any{"instanceName": strings.Repeat("N", 255)}, &created), 201)
	metrics := map[string]any{}
	for i := range 32 {
		metrics[fmt.Sprintf("%02d%s", i, strings.Repeat("m", 62))] = 1e15 + i
	}
	metrics["companyCount"] = 1e15
	delete(metrics, "00"+strings.Repeat("m", 62))
	status := srv.api(t, "POST", "/validate", false, map[string]any{"licenseKey": created.LicenseKey,
		"instanceName": strings.Repeat("W", 255), "instanceUrl": "https://example.com/" + strings.Repeat("u", 200), "metrics": metrics}, nil)
	t.Logf("validate: %d", status)
	tb := openTab(t)
	tb.do(t, chromedp.EmulateViewport(360, 900, chromedp.EmulateScale(1)), chromedp.Navigate(srv.URL+"/"))
	signIn(t, tb, srv.Token, "")
	wait[bool](t, tb, `document.querySelectorAll("#keys > li").length === 1 && window.innerWidth === 360`)
	is.True(eval[int](t, tb, `document.documentElement.scrollWidth`) <= 360) // no sideways scrolling
}
