package licensing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// listedIDs decodes a list answer into its key ids and nextCursor.
func listedIDs(t *testing.T, raw string) ([]string, *string) {
	t.Helper()
	var body struct {
		Keys []struct {
			ID string `json:"id"`
		} `json:"keys"`
		NextCursor *string `json:"nextCursor"`
	}
	if err := json.Unmarshal([]byte(raw), &body); err != nil {
		t.Fatalf("%v: %.200s", err, raw)
	}
	var ids []string
	for _, k := range body.Keys {
		ids = append(ids, k.ID)
	}
	return ids, body.NextCursor
}

func TestListStreamsEveryKeyAndPages(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	owner := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	const n = 1234 // more than two of the stream's chunks
	for i := 0; i < n; i++ {
		if i%100 == 0 {
			e.clock.Add(time.Second) // runs of keys share a creation time
		}
		_, err := e.svc.CreateKey(context.Background(), owner, licensing.CreateKeyInput{InstanceName: fmt.Sprint("i", i)})
		is.NoErr(err)
	}
	stored, err := e.store.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	var want []string
	for _, k := range stored {
		want = append(want, k.ID)
	}

	r := e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 200)
	ids, next := listedIDs(t, r.raw)
	is.Equal(ids, want) // no paging parameter: every key, newest first, as one JSON document
	is.True(next == nil)
	_, has := r.body["nextCursor"]
	is.True(!has) // the seed system's shape: {"keys": [...]}, with whose keys they are beside it
	is.Equal(len(r.body), 3)
	is.Equal(r.body["organizationId"], "org-1")
	is.Equal(r.body["organizationName"], "SC Firma Mea SRL")

	for _, limit := range []int{1, 7, 500, 1000} {
		var got []string
		url := fmt.Sprintf("%s?limit=%d", keysPath, limit)
		for pages := 0; ; pages++ {
			is.True(pages <= n/limit+1) // the walk ends
			r := e.do(t, "GET", url, "t-owner", "")
			is.Equal(r.status, 200)
			ids, next := listedIDs(t, r.raw)
			is.True(len(ids) <= limit)
			got = append(got, ids...)
			_, has := r.body["nextCursor"]
			is.True(has) // paged answers always carry nextCursor
			if next == nil {
				break
			}
			url = fmt.Sprintf("%s?limit=%d&cursor=%s", keysPath, limit, *next)
			if limit == 1 && pages == 3 {
				got = append(got, want[4:]...) // enough of the one-by-one walk
				break
			}
		}
		is.Equal(got, want) // pages walk every key once
	}
}

func TestListPagingErrors(t *testing.T) {
	for _, q := range []string{"limit=0", "limit=1001", "limit=-1", "limit=x", "limit=1.5", "cursor=nope", "cursor=AAAA",
		"limit=5&cursor=" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!"} {
		t.Run(q, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			r := e.do(t, "GET", keysPath+"?"+q, "t-owner", "")
			is.Equal(r.status, 400)
			is.True(r.body["error"] != nil)
		})
	}
}

func TestListAfterRevokeAndValidationsWhilePaging(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	ids := []string{}
	for i := 0; i < 5; i++ {
		id, _ := e.create(t, "t-owner", fmt.Sprint("k", i))
		ids = append([]string{id}, ids...)
		e.clock.Add(time.Second)
	}
	r := e.do(t, "GET", keysPath+"?limit=2", "t-owner", "")
	_, next := listedIDs(t, r.raw)
	is.Equal(e.do(t, "DELETE", keysPath+"/"+ids[3], "t-owner", "").status, 200)
	e.create(t, "t-owner", "newest") // a key made while paging is not in later pages
	r = e.do(t, "GET", keysPath+"?limit=2&cursor="+*next, "t-owner", "")
	got, _ := listedIDs(t, r.raw)
	is.Equal(got, ids[2:4])
	is.Equal(r.body["keys"].([]any)[1].(map[string]any)["active"], false) // the revocation shows
	r = e.do(t, "GET", keysPath+"?limit=2&cursor="+*next, "t-other", "")
	is.Equal(r.status, 400) // a cursor is good only for the organization it was made for
}

// TestListCursorsAreAuthenticated: a cursor the server did not make for
// this organization is a 400, whatever its shape: the old unauthenticated
// 24-byte form, random bytes of the right length, a real cursor altered,
// truncated or lengthened, another organization's, or one of unbounded
// size; a real cursor pages.
func TestListCursorsAreAuthenticated(t *testing.T) {
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.OwnerRateLimit = licensing.Unlimited })
	for i := range 3 {
		e.create(t, "t-owner", fmt.Sprint("k", i))
		e.clock.Add(time.Second)
	}
	first := e.do(t, "GET", keysPath+"?limit=1", "t-owner", "")
	real := first.body["nextCursor"].(string)
	raw, err := base64.RawURLEncoding.DecodeString(real)
	if err != nil || len(raw) != 40 {
		t.Fatalf("a cursor is 40 bytes, a position and a MAC: %q", real)
	}
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	oldForm := base64.RawURLEncoding.EncodeToString(raw[:24]) // position only, as cursors were made before
	// The last of the 54 characters carries 2 bits of the MAC and 4 unused
	// bits: another last character that differs only there decodes, by a
	// lenient decoder, to the same 40 bytes.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	unusedBits := real[:len(real)-1] + string(alphabet[strings.IndexByte(alphabet, real[len(real)-1])^1])
	e.orgs.update("org-2", func(o *licensing.Organization) { o.Features["selfHostingLicense"] = true })
	e.create(t, "t-other", "theirs")
	e.create(t, "t-other", "theirs too")
	other := e.do(t, "GET", keysPath+"?limit=1", "t-other", "").body["nextCursor"].(string)
	for _, tc := range []struct {
		name, cursor string
		status       int
	}{
		{"real", real, 200},
		{"old unauthenticated form", oldForm, 400},
		{"zeros", base64.RawURLEncoding.EncodeToString(make([]byte, 40)), 400},
		{"time changed", flip(3), 400},
		{"id changed", flip(20), 400},
		{"mac changed", flip(39), 400},
		{"unused bits of the last character set", unusedBits, 400},
		{"truncated", real[:len(real)-1], 400},
		{"truncated to a whole byte", base64.RawURLEncoding.EncodeToString(raw[:39]), 400},
		{"lengthened", real + "A", 400},
		{"padded", base64.URLEncoding.EncodeToString(raw), 400},
		{"another organization's", other, 400},
		{"huge", strings.Repeat("A", 4000), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "GET", keysPath+"?limit=1&cursor="+tc.cursor, "t-owner", "")
			is.Equal(r.status, tc.status) // only the server's own cursor for this organization pages
			if tc.status == 400 {
				is.Equal(r.body["error"], "cursor is not one this server made")
			}
		})
	}
}

// failingList counts ListKeys calls and fails every call after the first
// n; with held set, such a call instead says so on waiting and waits until
// held is closed; with panics set, such a call panics.
type failingList struct {
	licensing.Store
	mu      sync.Mutex
	calls   int
	n       int
	held    chan struct{}
	waiting chan struct{}
	panics  bool
}

func (f *failingList) ListKeys(ctx context.Context, org string, after licensing.KeyCursor, limit int) ([]licensing.Key, error) {
	f.mu.Lock()
	f.calls++
	fail := f.n > 0 && f.calls > f.n
	held, panics := f.held, f.panics
	f.mu.Unlock()
	if fail && panics {
		panic("store bug")
	}
	if fail && held != nil {
		f.waiting <- struct{}{}
		<-held
	} else if fail {
		return nil, errors.New("disk on fire")
	}
	return f.Store.ListKeys(ctx, org, after, limit)
}

// listCalls returns how many ListKeys calls f has seen.
func (f *failingList) listCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// TestListStreamBrokenByAStoreError: once the 200 is sent, a store error
// in a later chunk breaks the answer; it never ends as well-formed JSON
// that a client would take for the whole list.
func TestListStreamBrokenByAStoreError(t *testing.T) {
	is := is.New(t)
	fs := &failingList{Store: licensing.NewMemoryStore()}
	e := newEnv(t, func(c *licensing.Config) { c.Store = fs })
	owner := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	for i := 0; i < 1200; i++ { // three chunks
		_, err := e.svc.CreateKey(context.Background(), owner, licensing.CreateKeyInput{})
		is.NoErr(err)
	}
	fs.mu.Lock()
	fs.n = fs.calls + 2 // the owner's first two chunks, then the store fails
	fs.mu.Unlock()
	req, err := http.NewRequest("GET", e.srv.URL+keysPath, nil)
	is.NoErr(err)
	req.Header.Set("Authorization", "Bearer t-owner")
	res, err := http.DefaultClient.Do(req)
	is.NoErr(err)
	defer res.Body.Close()
	is.Equal(res.StatusCode, 200) // sent before the failure
	body, err := io.ReadAll(res.Body)
	is.True(err != nil)        // the client sees a broken transfer
	is.True(!json.Valid(body)) // and no whole document
}

// TestCursorWithoutLimitPages: a cursor alone is a paging parameter: the
// answer goes on after it, 100 keys at most, with nextCursor.
func TestCursorWithoutLimitPages(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.OwnerRateLimit = licensing.Unlimited })
	for i := range 3 {
		e.create(t, "t-owner", fmt.Sprint("k", i))
		e.clock.Add(time.Second)
	}
	first := e.do(t, "GET", keysPath+"?limit=1", "t-owner", "")
	is.Equal(len(first.body["keys"].([]any)), 1)
	rest := e.do(t, "GET", keysPath+"?cursor="+first.body["nextCursor"].(string), "t-owner", "")
	is.Equal(rest.status, 200)
	is.Equal(len(rest.body["keys"].([]any)), 2)
	next, present := rest.body["nextCursor"]
	is.True(present)    // paged
	is.Equal(next, nil) // and this was the last page
}

// FuzzListQuery sends arbitrary limit and cursor parameters to the list
// route.
func FuzzListQuery(f *testing.F) {
	e, _ := fuzzEnv(f)
	for _, s := range [][2]string{{"", ""}, {"1", ""}, {"0", ""}, {"1000", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, {"-1", "x"}, {"5", "////"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		q := url.Values{"limit": {limit}, "cursor": {cursor}}
		status, _, raw := post(t, e, "GET", keysPath+"?"+q.Encode(), "t-owner", "", nil)
		if status >= 500 {
			t.Fatalf("%d for limit %q cursor %q: %s", status, limit, cursor, raw)
		}
		if status == http.StatusOK {
			var m struct {
				Keys       []map[string]any `json:"keys"`
				NextCursor *string          `json:"nextCursor"`
			}
			if err := json.Unmarshal(raw, &m); err != nil || m.Keys == nil {
				t.Fatalf("200 answer of another shape: %q", raw)
			}
			return
		}
		checkErrorAnswer(t, status, raw)
	})
}
