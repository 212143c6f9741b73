package apitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/matryer/is"
)

// TestPaging walks the key list of org-acme page by page (limit 2, following
// nextCursor) and checks the pages add up to the unpaged list, in the same
// order, with no key twice, and that every page conforms to the document.
func TestPaging(t *testing.T) {
	is := is.New(t)
	for i := 0; i < 5; i++ {
		_, err := primary.createKey("")
		is.NoErr(err)
	}
	list := func(query string) (answer, []string, *string) {
		a, err := request{method: http.MethodGet, path: "/api/v1/licensing/keys", query: query,
			header: http.Header{"Authorization": {"Bearer " + ownerToken}, "X-Organization": {"org-acme"}}}.send()
		is.NoErr(err)
		var body struct {
			Keys []struct {
				ID string `json:"id"`
			} `json:"keys"`
			NextCursor *string `json:"nextCursor"`
		}
		is.NoErr(json.Unmarshal(a.body, &body))
		var ids []string
		for _, k := range body.Keys {
			ids = append(ids, k.ID)
		}
		return a, ids, body.NextCursor
	}
	op := findOp(t, http.MethodGet, "/api/v1/licensing/keys")
	all, allIDs, next := list("")
	is.Equal(all.status, http.StatusOK)
	is.True(next == nil) // no nextCursor without limit
	is.True(len(allIDs) >= 5)
	var paged []string
	seen := map[string]bool{}
	query := "limit=2"
	for page := 1; ; page++ {
		a, ids, next := list(query)
		if probs := conforms(op, a); len(probs) > 0 {
			t.Fatalf("page %d (%s): %v", page, query, probs)
		}
		if a.status != http.StatusOK || len(ids) > 2 {
			t.Fatalf("page %d (%s): %d with %d keys, want 200 with at most 2", page, query, a.status, len(ids))
		}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("page %d: key %s seen twice", page, id)
			}
			seen[id] = true
		}
		paged = append(paged, ids...)
		if next == nil {
			var raw map[string]any
			json.Unmarshal(a.body, &raw)
			if _, ok := raw["nextCursor"]; !ok {
				t.Fatalf("page %d: no nextCursor field; with limit every page has one (null on the last)", page)
			}
			break
		}
		if page > len(allIDs) {
			t.Fatalf("more pages than keys: the cursor does not advance")
		}
		query = "limit=2&cursor=" + url.QueryEscape(*next)
	}
	is.Equal(fmt.Sprint(paged), fmt.Sprint(allIDs)) // the pages are the whole list, in order
}
