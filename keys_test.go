package licensing_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/matryer/is"
)

// The full key is in the 201 body and nowhere in the store or the events.
func TestFullKeyIsNeverStored(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	var keys []string
	for i := 0; i < 20; i++ {
		_, k := e.create(t, "t-owner", fmt.Sprint("instance ", i))
		keys = append(keys, k)
		e.do(t, "POST", validatePath, "", validateBody(k, `"instanceId":"x`+fmt.Sprint(i%2)+`"`))
	}
	is.Equal(e.count(t), 20)
	var dump strings.Builder
	stored, err := e.store.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	for _, k := range stored {
		fmt.Fprintf(&dump, "%#v\n", k)
	}
	e.mu.Lock()
	fmt.Fprintf(&dump, "%#v\n", e.events)
	e.mu.Unlock()
	list := e.do(t, "GET", keysPath, "t-owner", "").raw
	for _, k := range keys {
		middle := k[8:56] // what the masked form hides
		for _, s := range []string{dump.String(), list} {
			is.True(!strings.Contains(s, k))                         // no full key
			is.True(!strings.Contains(s, middle))                    // not even its hidden part
			is.True(!strings.Contains(strings.ToLower(s), k[20:40])) // nor a piece of it
		}
	}
}
