package browsertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the browser's zone, to compare the times it shows

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/matryer/is"

	"github.com/licensekit/licensing/ownerpage"
)

// zone and locale the browser is told to use: times on the page must be in
// this zone, not in UTC.
const (
	zone   = "Europe/Bucharest"
	locale = "en_GB"
)

// hostile is an instance name that runs a script if the page ever treats
// an instance's values as HTML.
const hostile = `<img src=x onerror=alert(1)>`

// chromium returns the browser to drive, or skips the test (fails it when
// CI is set) when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium); CI is set, so this fails")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	return ""
}

// tab is one browser tab with what it has seen.
type tab struct {
	ctx       context.Context
	mu        sync.Mutex
	dialogs   []string // JavaScript dialogs that opened: must stay empty
	problems  []string // uncaught exceptions and policy violations
	downloads string
}

func (tb *tab) record(list *[]string, s string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	*list = append(*list, s)
}

func (tb *tab) seen() (dialogs, problems []string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.dialogs...), append([]string(nil), tb.problems...)
}

// openTab starts headless Chromium with a fresh profile, in zone and locale,
// with downloads going to a temporary directory.
func openTab(t *testing.T) *tab {
	t.Helper()
	path := chromium(t)
	profile := t.TempDir()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	tb := &tab{ctx: ctx, downloads: t.TempDir()}
	if err := chromedp.Do(ctx); err != nil { // start the browser and open the tab
		t.Fatal(err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.record(&tb.dialogs, string(ev.Type)+": "+ev.Message)
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			text := m.String()
			if m.IsException() || strings.Contains(text, "Content Security Policy") || strings.Contains(text, "Refused to") {
				tb.record(&tb.problems, text)
			}
		}
	}()
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetLocaleOverride, emulation.SetLocaleOverrideParams{Locale: locale}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: tb.downloads,
	}); err != nil {
		t.Fatal(err)
	}
	return tb
}

func (tb *tab) do(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](t *testing.T, tb *tab, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// wait returns the value of a JavaScript expression once it is truthy.
func wait[T any](t *testing.T, tb *tab, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Poll[T](expr, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("waiting for %s: %v (page error: %q)", expr, err, eval[string](t, tb, `document.getElementById("error").textContent`))
	}
	return v
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// card is the expression of the list item of key id.
func card(id string) string {
	return `document.querySelector('#keys > li[data-id=` + jsString(id) + `]')`
}

// field is the text of one field of a key's card, "" when there is no card.
func field(id, class string) string {
	return `(` + card(id) + `?.querySelector('.` + class + `')?.textContent ?? "")`
}

type listedKey struct {
	ID           string  `json:"id"`
	LicenseKey   string  `json:"licenseKey"`
	InstanceName *string `json:"instanceName"`
	Active       bool    `json:"active"`
	CreatedAt    string  `json:"createdAt"`
}

type keyList struct {
	Keys       []listedKey `json:"keys"`
	NextCursor *string     `json:"nextCursor"`
}

var fullKey = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Bearer tokens of the configured server: the owner of org-1 and org-2, and
// a member of org-1 who may not manage its keys.
const (
	ownerToken  = "lk_browsertest-owner-0123456789abcdef"
	memberToken = "lk_browsertest-member-0123456789abcdef"
)

func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// config is the server's configuration: a plan with a limit that the
// instance breaks, and an owner with two organizations.
func config() string {
	return `{
  "issuer": "licensing.browsertest",
  "billingUrl": "https://app.example.test/billing",
  "requiredFeature": "selfHostingLicense",
  "plans": {"business": {"selfHostingLicense": true, "maxCompanies": 2, "maxUsersPerOrg": 0}},
  "organizations": [
    {"id": "org-1", "name": "Acme SRL", "ownerId": "user-1", "members": ["user-2"], "plan": "business", "active": true},
    {"id": "org-2", "name": "Beta SRL", "ownerId": "user-1", "plan": "business", "active": true}
  ],
  "tokens": [
    {"sha256": "` + digest(ownerToken) + `", "userId": "user-1"},
    {"sha256": "` + digest(memberToken) + `", "userId": "user-2"}
  ]
}`
}

// errorText waits for the page's error message and returns it.
const errorText = `!document.getElementById("error").hidden && document.getElementById("error").textContent`

// setValue sets the value of the form field with the id.
func setValue(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](`document.getElementById(` + jsString(id) + `).value = ` + jsString(value))
}

// signIn fills the sign-in form and submits it.
func signIn(t *testing.T, tb *tab, token, org string) {
	t.Helper()
	tb.do(t,
		chromedp.WaitVisible(chromedp.ID("token")),
		setValue("token", token),
		setValue("org", org),
		chromedp.Click(chromedp.CSS(`#sign-in-form button[type=submit]`)),
	)
}

// The first start of the server without a configuration file prints an
// owner token: pasting it into the page signs in.
func TestFirstStart(t *testing.T) {
	chromium(t) // skip before building anything
	is := is.New(t)
	srv := startServer(t, "", "")
	tb := openTab(t)
	tb.do(t, chromedp.Navigate(srv.URL+"/"))
	signIn(t, tb, srv.Token, "")
	tb.do(t, chromedp.WaitVisible(chromedp.ID("empty")))
	is.Equal(eval[string](t, tb, `document.getElementById("who-text").textContent`), "Demo Organization") // named, not "Your default organization"
	tb.do(t, chromedp.Click(chromedp.ID("create")))
	key := wait[string](t, tb, `document.getElementById("new-key-value").value`)
	is.True(fullKey.MatchString(key))
	is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{"licenseKey": key}, nil), 200)
	dialogs, problems := tb.seen()
	is.Equal(len(dialogs)+len(problems), 0)
}

func TestOwnerPage(t *testing.T) {
	chromium(t) // skip before building anything
	srv := startServer(t, config(), ownerToken)
	tb := openTab(t)
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	var key, keyID, hostileID string
	// step runs one step of the story; once one fails, the rest are skipped.
	step := func(name string, f func(t *testing.T)) {
		if t.Failed() {
			return
		}
		t.Run(name, f)
	}

	step("served with its policy, unknown paths 404", func(t *testing.T) {
		is := is.New(t)
		res, err := http.Get(srv.URL + "/")
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, 200)
		is.Equal(res.Header.Get("Content-Security-Policy"), ownerpage.ContentSecurityPolicy)
		is.Equal(res.Header.Get("X-Content-Type-Options"), "nosniff")
		for _, p := range []string{"/nope", "/index.html", "/api/v1/licensing/nope"} {
			res, err := http.Get(srv.URL + p)
			is.NoErr(err)
			res.Body.Close()
			is.Equal(res.StatusCode, 404) // p
		}
		res, err = http.Get(srv.URL + "/healthz")
		is.NoErr(err)
		res.Body.Close()
		is.Equal(res.StatusCode, 200) // the server's own routes still win
	})

	step("a wrong token, typed with the keyboard: sign in again", func(t *testing.T) {
		is := is.New(t)
		tb.do(t, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")))
		is.Equal(eval[string](t, tb, `document.activeElement.id`), "token") // the token field has the focus
		tb.do(t, chromedp.KeyEvent("lk_not-a-real-token"), chromedp.KeyEvent("\r"))
		msg := wait[string](t, tb, errorText)
		is.True(strings.Contains(msg, "Sign in again"))                                 // 401 in plain words
		is.True(!eval[bool](t, tb, `document.getElementById("sign-in").hidden`))        // the sign-in form is back
		is.Equal(eval[int](t, tb, `sessionStorage.length`), 0)                          // the rejected token is forgotten
		is.Equal(eval[string](t, tb, `document.getElementById("error").role`), "alert") // announced
	})

	step("an unknown organization: said in plain words", func(t *testing.T) {
		is := is.New(t)
		signIn(t, tb, srv.Token, "org-nope")
		msg := wait[string](t, tb, errorText)
		is.True(strings.Contains(msg, "Organization not found"))    // the server's reason
		is.True(strings.Contains(msg, "Check the organization id")) // and what to do
		tb.do(t, chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("token")))
		is.Equal(eval[int](t, tb, `sessionStorage.length`), 0)                    // signing out forgets the token
		is.Equal(eval[string](t, tb, `document.getElementById("org").value`), "") // and the organization
	})

	step("a member who may not manage keys: why, in plain words", func(t *testing.T) {
		is := is.New(t)
		signIn(t, tb, memberToken, "")
		msg := wait[string](t, tb, errorText)
		req, err := http.NewRequest("GET", srv.URL+"/api/v1/licensing/keys", nil)
		is.NoErr(err)
		req.Header.Set("Authorization", "Bearer "+memberToken)
		res, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		var refusal struct {
			Error string `json:"error"`
		}
		is.NoErr(json.NewDecoder(res.Body).Decode(&refusal))
		res.Body.Close()
		is.Equal(res.StatusCode, 403)
		t.Log(msg)
		is.True(strings.HasPrefix(msg, "Not allowed"))                         // 403 in plain words
		is.True(strings.Contains(msg, strings.TrimSuffix(refusal.Error, "."))) // with the server's reason
		tb.do(t, chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("token")))
	})

	step("sign in", func(t *testing.T) {
		is := is.New(t)
		signIn(t, tb, srv.Token, "")
		tb.do(t, chromedp.WaitVisible(chromedp.ID("empty")))
		is.True(strings.Contains(eval[string](t, tb, `document.getElementById("empty").textContent`), "No keys yet"))
		is.True(strings.Contains(eval[string](t, tb, `document.getElementById("tz").textContent`), zone)) // the browser's zone is named
		is.Equal(eval[string](t, tb, `document.getElementById("token").value`), "")                       // not left in the form
		is.Equal(eval[string](t, tb, `sessionStorage.getItem("licensing.ownerToken")`), srv.Token)        // kept for this tab only
		is.Equal(eval[int](t, tb, `localStorage.length`), 0)
		is.Equal(eval[string](t, tb, `document.cookie`), "")
		is.True(!strings.Contains(eval[string](t, tb, `location.href`), srv.Token)) // never in a URL
	})

	step("create a key and read it once", func(t *testing.T) {
		is := is.New(t)
		tb.do(t, setValue("instance-name", "Production server"), chromedp.Click(chromedp.ID("create")))
		key = wait[string](t, tb, `!document.getElementById("new-key").hidden && document.getElementById("new-key-value").value`)
		is.True(fullKey.MatchString(key)) // the full key, once
		warning := eval[string](t, tb, `document.querySelector("#new-key .warning").textContent`)
		is.True(strings.Contains(warning, "shown only this once")) // a plain warning
		keyID = wait[string](t, tb, `document.querySelector("#keys > li")?.dataset.id`)
		is.Equal(eval[string](t, tb, field(keyID, "masked")), key[:8]+"..."+key[56:])
		is.Equal(eval[string](t, tb, field(keyID, "instance-name")), "Production server")
		is.Equal(eval[string](t, tb, field(keyID, "badge")), "Active")
		is.Equal(eval[string](t, tb, field(keyID, "validated")), "never")
		stored := eval[string](t, tb, `JSON.stringify(sessionStorage) + JSON.stringify(localStorage) + document.cookie + location.href`)
		is.True(!strings.Contains(stored, key)) // the key is kept nowhere but on screen

		tb.do(t, chromedp.Click(chromedp.ID("copy")))
		copied := wait[string](t, tb, `document.getElementById("copy-status").textContent`)
		is.True(strings.Contains(copied, "Copied") || strings.Contains(copied, "Ctrl+C")) // copied, or selected for the owner to copy

		var list keyList
		is.Equal(srv.api(t, "GET", "/keys", true, nil, &list), 200)
		is.Equal(len(list.Keys), 1)
		created, err := time.Parse(time.RFC3339, list.Keys[0].CreatedAt)
		is.NoErr(err)
		shown := eval[string](t, tb, field(keyID, "created"))
		is.True(strings.Contains(shown, created.In(loc).Format("2 Jan 2006"))) // the date in the browser's zone
		is.True(strings.Contains(shown, created.In(loc).Format("15:04")))      // and the time: not UTC
	})

	step("reload: only the masked key remains", func(t *testing.T) {
		is := is.New(t)
		tb.do(t, chromedp.Reload())
		wait[string](t, tb, field(keyID, "masked"))
		is.True(eval[bool](t, tb, `document.getElementById("new-key").hidden`))
		page := eval[string](t, tb, `document.documentElement.outerHTML + [...document.querySelectorAll("input")].map(i => i.value).join()`)
		is.True(!strings.Contains(page, key))    // gone for good
		is.True(strings.Contains(page, key[:8])) // the masked form is there
		is.Equal(eval[string](t, tb, field(keyID, "masked")), key[:8]+"..."+key[56:])
	})

	step("validate over HTTP: the instance appears", func(t *testing.T) {
		is := is.New(t)
		var answer struct {
			Valid      bool     `json:"valid"`
			Violations []string `json:"violations"`
		}
		status := srv.api(t, "POST", "/validate", false, map[string]any{
			"licenseKey": key, "instanceName": "Büro Cluj", "instanceUrl": "https://factura.example.ro/app",
			"metrics": map[string]any{"companyCount": 3, "userCount": 12},
		}, &answer)
		is.Equal(status, 200)
		is.True(answer.Valid)
		tb.do(t, chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		is.Equal(wait[string](t, tb, field(keyID, "instance-name")+` === "Büro Cluj" && "ok"`), "ok")
		is.Equal(eval[string](t, tb, card(keyID)+`.querySelector(".instance-url a").href`), "https://factura.example.ro/app") // an https URL is a link
		is.Equal(eval[string](t, tb, card(keyID)+`.querySelector(".instance-url a").target`), "_blank")                       // in a new tab: leaving would end the page's one showing of a new key
		rel := eval[string](t, tb, card(keyID)+`.querySelector(".instance-url a").rel`)
		is.True(strings.Contains(rel, "noopener") && strings.Contains(rel, "noreferrer")) // and the instance gets no handle on the page, nor its address
		metrics := eval[string](t, tb, field(keyID, "metrics"))
		is.True(strings.Contains(metrics, "companyCount: 3"))
		is.True(strings.Contains(metrics, "userCount: 12"))
		is.Equal(eval[string](t, tb, field(keyID, "violations")), answer.Violations[0])               // the plan allows 2 companies
		is.True(eval[string](t, tb, card(keyID)+`.querySelector(".activated time")?.dateTime`) != "") // activated now
		is.True(eval[string](t, tb, card(keyID)+`.querySelector(".validated time")?.dateTime`) != "") // and validated
	})

	step("download offline tokens", func(t *testing.T) {
		for _, alg := range []string{"RS256", "EdDSA"} {
			t.Run(alg, func(t *testing.T) {
				is := is.New(t)
				tb.do(t,
					chromedp.SetValue(chromedp.CSS(`#keys > li[data-id="`+keyID+`"] .alg`), alg),
					chromedp.Click(chromedp.CSS(`#keys > li[data-id="`+keyID+`"] .download`)),
				)
				file := filepath.Join(tb.downloads, "license-"+keyID+"-"+alg+".jwt")
				b := waitFile(t, file)
				parts := strings.Split(strings.TrimSpace(string(b)), ".")
				is.Equal(len(parts), 3) // a JWT
				hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
				is.NoErr(err)
				var h struct {
					Alg string `json:"alg"`
				}
				is.NoErr(json.Unmarshal(hdr, &h))
				is.Equal(h.Alg, alg) // the algorithm the owner chose
				is.True(strings.Contains(eval[string](t, tb, `document.getElementById("status").textContent`), "downloaded"))
			})
		}
	})

	step("an instance's values are text, never HTML", func(t *testing.T) {
		is := is.New(t)
		var created struct {
			ID         string `json:"id"`
			LicenseKey string `json:"licenseKey"`
		}
		is.Equal(srv.api(t, "POST", "/keys", true, map[string]any{}, &created), 201)
		hostileID = created.ID
		hostileURL := `https://evil.example/?q="><img/src=x/onerror=alert(2)>` // no spaces: the server refuses those in a URL
		is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{
			"licenseKey": created.LicenseKey, "instanceName": hostile, "instanceUrl": hostileURL,
			"metrics": map[string]any{"<b>bold</b>": 1},
		}, nil), 200)
		tb.do(t, chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		is.Equal(wait[string](t, tb, field(hostileID, "instance-name")), hostile) // shown as the text it is
		is.Equal(eval[int](t, tb, card(hostileID)+`.querySelector(".instance-name").childElementCount`), 0)
		is.Equal(eval[int](t, tb, `document.querySelectorAll("img, b").length`), 0)                   // no element made from any of it
		is.Equal(eval[string](t, tb, field(hostileID, "instance-url")), hostileURL)                   // the URL's text as sent
		is.Equal(eval[int](t, tb, card(hostileID)+`.querySelectorAll(".instance-url a").length`), 1)  // an https URL is a link
		is.True(strings.Contains(eval[string](t, tb, field(hostileID, "metrics")), "<b>bold</b>: 1")) // metric names are text too

		// A bare host (which the contract allows) is shown but is not a link.
		is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{"licenseKey": created.LicenseKey, "instanceUrl": "app.example.com"}, nil), 200)
		tb.do(t, chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		is.Equal(wait[string](t, tb, field(hostileID, "instance-url")+` === "app.example.com" && "ok"`), "ok")
		is.Equal(eval[int](t, tb, card(hostileID)+`.querySelectorAll(".instance-url a").length`), 0)
		dialogs, _ := tb.seen()
		is.Equal(len(dialogs), 0) // no script ran
	})

	step("revoke, with a confirmation, from the keyboard", func(t *testing.T) {
		is := is.New(t)
		revoke := `#keys > li[data-id="` + keyID + `"] .revoke`
		tb.do(t, chromedp.Focus(chromedp.CSS(revoke)), chromedp.KeyEvent("\r"))
		is.Equal(wait[string](t, tb, `document.activeElement.className`), "cancel-revoke") // the safe choice has the focus
		is.True(!eval[bool](t, tb, card(keyID)+`.querySelector(".confirm").hidden`))
		tb.do(t, chromedp.KeyEvent("\r")) // cancel
		is.Equal(wait[string](t, tb, `document.activeElement.classList.contains("revoke") && "back"`), "back")
		is.Equal(eval[string](t, tb, field(keyID, "badge")), "Active") // cancel keeps the key
		is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{"licenseKey": key}, nil), 200)

		tb.do(t, chromedp.KeyEvent("\r"))
		wait[string](t, tb, `document.activeElement.className`)
		tb.do(t, chromedp.Click(chromedp.CSS(`#keys > li[data-id="`+keyID+`"] .confirm-revoke`)))
		is.Equal(wait[string](t, tb, field(keyID, "badge")+` === "Revoked" && "ok"`), "ok")
		is.True(eval[bool](t, tb, card(keyID)+`.querySelector(".actions").hidden`))                   // no token for a revoked key
		is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{"licenseKey": key}, nil), 401) // it stopped working

		tb.do(t, chromedp.Reload())
		is.Equal(wait[string](t, tb, field(keyID, "badge")), "Revoked") // as the server says
		is.True(eval[bool](t, tb, card(keyID)+`.classList.contains("is-revoked")`))
		is.Equal(eval[string](t, tb, field(hostileID, "badge")), "Active")
	})

	step("a token that stops working: sign in again", func(t *testing.T) {
		is := is.New(t)
		tb.do(t, chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("licensing.ownerToken", "lk_revoked")`), chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		msg := wait[string](t, tb, errorText)
		is.True(strings.Contains(msg, "Sign in again"))
		is.True(eval[bool](t, tb, `document.getElementById("app").hidden`)) // the keys are no longer shown
		is.Equal(eval[int](t, tb, `document.querySelectorAll("#keys > li").length`), 0)
		signIn(t, tb, srv.Token, "")
		wait[string](t, tb, field(keyID, "badge"))
		is.True(eval[bool](t, tb, `document.getElementById("error").hidden`)) // the message goes once it is solved
	})

	step("screenshots", func(t *testing.T) {
		is := is.New(t)
		tb.do(t, setValue("instance-name", "Staging"), chromedp.Click(chromedp.ID("create")))
		wait[string](t, tb, `!document.getElementById("new-key").hidden && document.getElementById("new-key-value").value`)
		staging := wait[string](t, tb, `document.getElementById("new-key-value").value`)
		tb.do(t, chromedp.Click(chromedp.ID("new-key-done"))) // no full key in a committed image
		is.Equal(srv.api(t, "POST", "/validate", false, map[string]any{
			"licenseKey": staging, "instanceName": "Staging", "instanceUrl": "https://staging.factura.example.ro",
			"metrics": map[string]any{"companyCount": 5, "userCount": 4, "invoicesThisMonth": 1234},
		}, nil), 200)
		tb.do(t, chromedp.WaitEnabled(chromedp.ID("refresh")), chromedp.Click(chromedp.ID("refresh")))
		// the refreshed list: another key may show violations already (it is shared by two instances)
		wait[bool](t, tb, `document.getElementById("status").textContent === "3 keys." && document.getElementById("new-key").hidden && document.querySelectorAll("#keys > li").length === 3 && !!document.querySelector("#keys > li .violations li")`)
		is.Equal(eval[string](t, tb, `document.getElementById("status").textContent`), "3 keys.")
		dir := t.TempDir()
		if os.Getenv("UPDATE_SCREENSHOTS") != "" {
			dir = filepath.Join(repoRoot(t), "docs")
		}
		shoot := func(name string, width int) {
			tb.do(t, chromedp.EmulateViewport(int64(width), 900, chromedp.EmulateScale(1)))
			wait[bool](t, tb, `window.innerWidth === `+jsonInt(width))
			scroll := eval[int](t, tb, `document.documentElement.scrollWidth`)
			is.True(scroll <= width) // nothing wider than the window: no sideways scrolling
			b, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
			is.NoErr(err)
			img, err := png.DecodeConfig(bytes.NewReader(b))
			is.NoErr(err)
			is.Equal(img.Width, width)
			is.NoErr(os.WriteFile(filepath.Join(dir, name), b, 0o644))
		}
		shoot("owner-page-wide.png", 1280)
		shoot("owner-page-360.png", 360)
	})

	step("paging: load more", func(t *testing.T) {
		is := is.New(t)
		var probe map[string]json.RawMessage
		is.Equal(srv.api(t, "GET", "/keys?limit=1", true, nil, &probe), 200)
		_, paged := probe["nextCursor"]
		if paged {
			for range 51 { // more than the page's page size of 50
				is.Equal(srv.api(t, "POST", "/keys", true, map[string]any{"instanceName": "bulk"}, nil), 201)
			}
		}
		var all keyList
		is.Equal(srv.api(t, "GET", "/keys", true, nil, &all), 200)
		tb.do(t, chromedp.Reload())
		if paged {
			is.Equal(wait[int](t, tb, `document.querySelectorAll("#keys > li").length`), 50) // the first page
			is.True(!eval[bool](t, tb, `document.getElementById("more").hidden`))
			tb.do(t, chromedp.Click(chromedp.ID("more")))
			wait[bool](t, tb, `document.getElementById("more").hidden`)
		} else {
			t.Log("the server does not page its list yet: the page shows every key and no Load more")
			wait[int](t, tb, `document.querySelectorAll("#keys > li").length`)
			is.True(eval[bool](t, tb, `document.getElementById("more").hidden`))
		}
		ids := eval[[]string](t, tb, `[...document.querySelectorAll("#keys > li")].map(li => li.dataset.id)`)
		want := make([]string, len(all.Keys))
		for i, k := range all.Keys {
			want[i] = k.ID
		}
		is.Equal(ids, want) // every key once, newest first
	})

	dialogs, problems := tb.seen()
	if len(dialogs) > 0 {
		t.Errorf("JavaScript dialogs opened: %q", dialogs)
	}
	if len(problems) > 0 {
		t.Errorf("uncaught exceptions or policy violations in the page: %q", problems)
	}
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// waitFile returns the contents of a finished download.
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			return b
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(filepath.Dir(path))
			t.Fatalf("no download %s; the directory has %v", filepath.Base(path), entries)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
