package licensing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

const revocationsPath = "/api/v1/licensing/revocations"

// revokeMany creates n keys in org-1 and revokes them through the Service.
func revokeMany(t *testing.T, e *env, n int) []string {
	t.Helper()
	owner := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	var ids []string
	for range n {
		k, err := e.svc.CreateKey(context.Background(), owner, licensing.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.RevokeKey(context.Background(), owner, k.Key.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.Key.ID)
	}
	return ids
}

// TestRevocationListBuiltOncePerChange: the list is read from the store
// once per change, however many ask for it, with or without a nonce, at
// once or in turn; a revocation drops it at once; a change made elsewhere
// (another server on the same store) shows within ten seconds.
func TestRevocationListBuiltOncePerChange(t *testing.T) {
	is := is.New(t)
	fs := &failingList{Store: licensing.NewMemoryStore()}
	e := newEnvHTTP(t, func(c *licensing.Config) { c.Store = fs; c.Signing = testSigning },
		func(c *licensing.HandlerConfig) {
			c.RateLimit, c.OwnerRateLimit = licensing.Unlimited, licensing.Unlimited
		})
	keys := jwks(t, e)
	id1, _ := e.create(t, "t-owner", "a")
	id2, _ := e.create(t, "t-owner", "b")
	is.Equal(e.do(t, "DELETE", keysPath+"/"+id1, "t-owner", "").status, 200)

	before := fs.listCalls()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			q := "?org=org-1"
			if i%2 == 1 {
				q += "&nonce=n" + fmt.Sprint(i)
			}
			r := e.do(t, "GET", revocationsPath+q, "", "")
			if r.status != 200 || !verifyAnswer(t, keys, r) || fmt.Sprint(r.body["revoked"]) != fmt.Sprint([]string{id1}) {
				t.Errorf("revocations%s: %d %s", q, r.status, r.raw)
			}
		})
	}
	wg.Wait()
	for range 3 {
		is.Equal(e.do(t, "GET", revocationsPath+"?org=org-1", "", "").status, 200)
	}
	is.Equal(fs.listCalls()-before, 1) // eleven answers, one build

	is.Equal(e.do(t, "DELETE", keysPath+"/"+id2, "t-owner", "").status, 200)
	r := e.do(t, "GET", revocationsPath+"?org=org-1", "", "")
	want := []any{id1, id2}
	if id2 < id1 {
		want = []any{id2, id1}
	}
	is.Equal(r.body["revoked"], want)  // the revocation shows at once
	is.Equal(fs.listCalls()-before, 2) // built again, once
	is.True(verifyAnswer(t, keys, r))  // and signed
	is.Equal(e.do(t, "DELETE", keysPath+"/"+id2, "t-owner", "").status, 200)
	e.do(t, "GET", revocationsPath+"?org=org-1", "", "")
	is.Equal(fs.listCalls()-before, 2) // revoking a revoked key changes nothing

	id3, _ := e.create(t, "t-owner", "c")
	_, err := fs.Store.RevokeKey(context.Background(), id3, e.clock.Now()) // as another server on the same store would
	is.NoErr(err)
	e.clock.Add(9 * time.Second)
	is.Equal(len(e.do(t, "GET", revocationsPath+"?org=org-1", "", "").body["revoked"].([]any)), 2) // still the list built here
	e.clock.Add(time.Second)
	is.Equal(len(e.do(t, "GET", revocationsPath+"?org=org-1", "", "").body["revoked"].([]any)), 3) // ten seconds on, rebuilt
	is.Equal(fs.listCalls()-before, 3)

	for range 3 {
		is.Equal(e.do(t, "GET", revocationsPath+"?org=org-404", "", "").raw, `{"organizationId":"org-404","revoked":[]}`+"\n")
	}
	is.Equal(fs.listCalls()-before, 6) // an organization without keys is not kept: made-up ids cannot fill memory
}

// TestRevocationListBuildRacingARevoke: a build that read the store before
// a revocation and ends after it is not kept: the next request, started
// after RevokeKey returned, lists the key.
func TestRevocationListBuildRacingARevoke(t *testing.T) {
	is := is.New(t)
	fs := &failingList{Store: licensing.NewMemoryStore()}
	e := newEnvHTTP(t, func(c *licensing.Config) { c.Store = fs },
		func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	owner := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	var newest string
	for range 501 { // two chunks; the newest key is in the first
		k, err := e.svc.CreateKey(context.Background(), owner, licensing.CreateKeyInput{})
		is.NoErr(err)
		newest = k.Key.ID
		e.clock.Add(time.Millisecond)
	}
	fs.mu.Lock()
	fs.n, fs.held, fs.waiting = fs.calls+1, make(chan struct{}), make(chan struct{}, 1)
	held := fs.held
	fs.mu.Unlock()
	unhold := sync.OnceFunc(func() {
		fs.mu.Lock()
		fs.n = 0
		fs.mu.Unlock()
		close(held)
	})
	t.Cleanup(unhold)
	before := make(chan response)
	go func() { before <- e.do(t, "GET", revocationsPath+"?org=org-1", "", "") }()
	<-fs.waiting // the build read the first chunk, without the revocation

	is.NoErr(e.svc.RevokeKey(context.Background(), owner, newest))
	unhold()
	is.Equal((<-before).body["revoked"], []any{}) // read before the revocation
	is.Equal(e.do(t, "GET", revocationsPath+"?org=org-1", "", "").body["revoked"], []any{newest})
}

// TestRevocationListAfterAStorePanic: a build whose store call panics does
// not leave its organization's list pending for ever: the next request
// builds it anew.
func TestRevocationListAfterAStorePanic(t *testing.T) {
	is := is.New(t)
	fs := &failingList{Store: licensing.NewMemoryStore()}
	e := newEnvHTTP(t, func(c *licensing.Config) { c.Store = fs },
		func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	ids := revokeMany(t, e, 1)
	is.Equal(e.do(t, "GET", revocationsPath+"?org=org-2", "", "").status, 200) // one store call answered
	fs.mu.Lock()
	fs.n, fs.panics = fs.calls, true
	fs.mu.Unlock()
	_, err := http.Get(e.srv.URL + revocationsPath + "?org=org-1")
	is.True(err != nil) // net/http recovered the panic and broke the connection off
	fs.mu.Lock()
	fs.n, fs.panics = 0, false
	fs.mu.Unlock()

	// A guard against hanging for ever on the code before the fix, not a
	// measure of speed.
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(e.srv.URL + revocationsPath + "?org=org-1")
	is.NoErr(err)
	defer res.Body.Close()
	var list wire.RevocationList
	is.NoErr(json.NewDecoder(res.Body).Decode(&list))
	is.Equal(list.Revoked, ids)
}

// TestRevocationListETag: an answer without a nonce carries a strong ETag;
// If-None-Match naming it (alone, weakly, in a list, or "*") is a 304 with
// no body; another tag, or a revocation since, gives the whole list with a
// new tag; an answer with a nonce is always whole, with no ETag. The body
// stays json.Marshal of wire.RevocationList, byte for byte.
func TestRevocationListETag(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, func(c *licensing.Config) { c.Signing = testSigning },
		func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	keys := jwks(t, e)
	ids := revokeMany(t, e, 3)
	first := e.do(t, "GET", revocationsPath+"?org=org-1", "", "")
	is.Equal(first.status, 200)
	etag := first.header.Get("ETag")
	is.True(len(etag) > 2 && etag[0] == '"') // a strong tag
	is.True(verifyAnswer(t, keys, first))
	var list wire.RevocationList
	is.NoErr(json.Unmarshal([]byte(first.raw), &list))
	want, _ := json.Marshal(list)
	is.Equal(first.raw, string(want)+"\n") // the encoding of before
	is.Equal(len(list.Revoked), len(ids))

	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		r := e.do(t, "GET", revocationsPath+"?org=org-1", "", "", "If-None-Match", inm)
		is.Equal(r.status, 304) // If-None-Match names the current list
		is.Equal(r.raw, "")
		is.Equal(r.header.Get("ETag"), etag)
	}
	r := e.do(t, "GET", revocationsPath+"?org=org-1", "", "", "If-None-Match", `"other"`)
	is.Equal(r.status, 200)
	is.Equal(r.raw, first.raw)
	e.clock.Add(time.Second) // another Licensing-Date: signed anew
	r = e.do(t, "GET", revocationsPath+"?org=org-1", "", "")
	is.True(verifyAnswer(t, keys, r))
	is.True(r.header.Get(licensing.SignatureHeader) != first.header.Get(licensing.SignatureHeader))

	r = e.do(t, "GET", revocationsPath+"?org=org-1&nonce=n-1", "", "", "If-None-Match", etag)
	is.Equal(r.status, 200)            // a nonce asks for a fresh signature
	is.Equal(r.header.Get("ETag"), "") // and its answer is another representation
	is.True(verifyAnswer(t, keys, r))
	list.Nonce = "n-<&>"
	want, _ = json.Marshal(list)
	r = e.do(t, "GET", revocationsPath+"?org=org-1&nonce=n-%3C%26%3E", "", "")
	is.Equal(r.raw, string(want)+"\n") // the nonce escaped as encoding/json does

	revokeMany(t, e, 1)
	r = e.do(t, "GET", revocationsPath+"?org=org-1", "", "", "If-None-Match", etag)
	is.Equal(r.status, 200) // revoked since: the whole new list
	is.Equal(len(r.body["revoked"].([]any)), 4)
	is.True(r.header.Get("ETag") != etag)
}

// TestLargeAnswersHaveSlots: while HandlerConfig.MaxLargeAnswers large
// answers are being written, one more (a revocation list over 64 KiB, an
// unpaged list of more than 500 keys) waits its turn and, when none comes
// within a second, is a 503 with Retry-After, signed where the route
// signs; small answers and validation go on; once the slot is free, large
// answers are served again, whole. HEAD, which sends no body, takes no
// slot (one with a nonce, signed over the whole body, does). A 503 carries no ETag: a client that
// kept it would be told 304 for a list it never received.
func TestLargeAnswersHaveSlots(t *testing.T) {
	is := is.New(t)
	fs := &failingList{Store: licensing.NewMemoryStore()}
	e := newEnvHTTP(t, func(c *licensing.Config) { c.Store = fs; c.Signing = testSigning },
		func(c *licensing.HandlerConfig) {
			c.RateLimit, c.OwnerRateLimit, c.MaxLargeAnswers = licensing.Unlimited, licensing.Unlimited, 1
		})
	keys := jwks(t, e)
	revokeMany(t, e, 1700) // 1,700 ids: 66 KB
	_, key := e.create(t, "t-owner", "live")
	e.orgs.update("org-2", func(o *licensing.Organization) { o.Features["selfHostingLicense"] = true })
	e.create(t, "t-other", "small")
	is.Equal(e.do(t, "GET", revocationsPath+"?org=org-1", "", "").status, 200) // built

	// An unpaged list of org-1 takes the one slot and stops in its second chunk.
	fs.mu.Lock()
	fs.n, fs.held, fs.waiting = fs.calls+1, make(chan struct{}), make(chan struct{}, 1)
	held := fs.held
	fs.mu.Unlock()
	unhold := sync.OnceFunc(func() {
		fs.mu.Lock()
		fs.n = 0 // the store answers again
		fs.mu.Unlock()
		close(held)
	})
	t.Cleanup(unhold) // a failure below does not leave the list hanging
	listed := make(chan response)
	go func() { listed <- e.do(t, "GET", keysPath, "t-owner", "") }()
	<-fs.waiting

	for _, q := range []string{"?org=org-1", "?org=org-1&nonce=n-1"} {
		r := e.do(t, "GET", revocationsPath+q, "", "")
		is.Equal(r.status, 503) // the slot is taken
		is.Equal(r.header.Get("Retry-After"), "1")
		is.Equal(r.body["error"], "Busy with other large answers; retry after the time in Retry-After.")
		is.True(verifyAnswer(t, keys, r))  // signed like every answer of the route
		is.Equal(r.header.Get("ETag"), "") // a tag names the list, which a 503 does not hold
	}
	fs.mu.Lock()
	fs.n = 0 // the store answers the calls below
	fs.mu.Unlock()
	r := e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 503) // a second unpaged list of many keys
	is.Equal(r.header.Get("Retry-After"), "1")
	is.Equal(e.do(t, "GET", keysPath, "t-other", "").status, 200)               // an unpaged list of one chunk is small
	is.Equal(e.do(t, "GET", keysPath+"?limit=1000", "t-owner", "").status, 200) // a page is bounded
	is.Equal(e.do(t, "GET", revocationsPath+"?org=org-2", "", "").status, 200)  // a short revocation list
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, "")).status, 200)
	head := e.do(t, "HEAD", revocationsPath+"?org=org-1", "", "")
	is.Equal(head.status, 200) // HEAD sends no body: no slot, no pacing
	is.True(head.header.Get("ETag") != "")
	is.Equal(e.do(t, "HEAD", keysPath, "t-owner", "").status, 200)

	unhold()
	r = <-listed
	is.Equal(r.status, 200)
	is.Equal(len(r.body["keys"].([]any)), 1701)                                // the held list finished whole
	is.Equal(e.do(t, "GET", revocationsPath+"?org=org-1", "", "").status, 200) // the slot is free again
	is.Equal(e.do(t, "GET", keysPath, "t-owner", "").status, 200)
}

// FuzzRevocationsQuery sends arbitrary org and nonce parameters to the
// revocations route: a signed answer only ever echoes a nonce that keeps
// the one nonce rule.
func FuzzRevocationsQuery(f *testing.F) {
	e, _ := fuzzEnv(f)
	for _, s := range [][2]string{{"org-1", ""}, {"org-1", "abc"}, {"", "abc"}, {"", strings.Repeat("\x01", 200)}, {"org-\u202e", "n"}, {"\xff", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, org, nonce string) {
		q := url.Values{"org": {org}, "nonce": {nonce}}
		status, hdr, raw := post(t, e, "GET", "/api/v1/licensing/revocations?"+q.Encode(), "", "", nil)
		if status >= 500 {
			t.Fatalf("%d for org %q nonce %q: %s", status, org, nonce, raw)
		}
		signed := hdr.Get(licensing.SignatureHeader) != ""
		// Revocation lists are always signed, except past the rate limit
		// without a nonce; a nonce that breaks the rule signs nothing.
		goodNonce := len(nonce) <= 128 && !strings.ContainsFunc(nonce, func(r rune) bool { return r < ' ' || r > '~' })
		if status == http.StatusTooManyRequests {
			goodNonce = goodNonce && nonce != ""
		}
		if signed != goodNonce {
			t.Fatalf("signed %v for nonce %q: %s", signed, nonce, raw)
		}
		if status == http.StatusOK {
			var m wire.RevocationList
			if err := json.Unmarshal(raw, &m); err != nil || m.OrganizationID != org || m.Revoked == nil {
				t.Fatalf("200 answer of another shape: %q", raw)
			}
			return
		}
		checkErrorAnswer(t, status, raw, "nonce")
	})
}
