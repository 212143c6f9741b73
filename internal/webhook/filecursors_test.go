package webhook_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/webhook"
	"github.com/matryer/is"
)

func TestFileCursorsPersist(t *testing.T) {
	is := is.New(t)
	ctx, now := context.Background(), time.Now()
	path := filepath.Join(t.TempDir(), "webhook-cursors.json")
	c, err := webhook.OpenFileCursors(path)
	is.NoErr(err) // a missing file holds no cursor
	cur, ok, err := c.LeaseCursor(ctx, "https://a.example", "me", now, time.Minute)
	is.NoErr(err)
	is.True(ok)
	is.Equal(cur, uint64(0)) // a new endpoint starts at the log's beginning
	is.NoErr(c.CommitCursor(ctx, "https://a.example", "me", 7, now, time.Minute))
	is.NoErr(c.CommitCursor(ctx, "https://a.example", "me", 5, now, time.Minute)) // a smaller cursor changes nothing

	again, err := webhook.OpenFileCursors(path)
	is.NoErr(err)
	cur, ok, err = again.LeaseCursor(ctx, "https://a.example", "me", now, time.Minute)
	is.NoErr(err)
	is.True(ok)
	is.Equal(cur, uint64(7)) // the committed cursor survived a reopen
}

func TestFileCursorsLease(t *testing.T) {
	is := is.New(t)
	ctx, now := context.Background(), time.Now()
	c := webhook.NewMemoryCursors()
	_, ok, _ := c.LeaseCursor(ctx, "e", "a", now, time.Minute)
	is.True(ok)
	_, ok, _ = c.LeaseCursor(ctx, "e", "b", now, time.Minute)
	is.True(!ok)                                                                                 // a's lease runs
	is.True(errors.Is(c.CommitCursor(ctx, "e", "b", 1, now, time.Minute), webhook.ErrLeaseLost)) // b does not hold it
	_, ok, _ = c.LeaseCursor(ctx, "e", "a", now, time.Minute)
	is.True(ok) // a renews its own
	_, ok, _ = c.LeaseCursor(ctx, "e", "b", now.Add(2*time.Minute), time.Minute)
	is.True(ok)                                                                                  // a's lease ran out: b takes it
	is.True(errors.Is(c.CommitCursor(ctx, "e", "a", 1, now, time.Minute), webhook.ErrLeaseLost)) // a lost it
}

func TestOpenFileCursorsRefusesDamagedFile(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "webhook-cursors.json")
	is.NoErr(os.WriteFile(path, []byte(`{"cursors": {"e": -1}`), 0o600))
	_, err := webhook.OpenFileCursors(path)
	is.True(err != nil)                                 // a damaged file is refused
	is.True(strings.Contains(err.Error(), path))        // the error names the file
	is.True(strings.Contains(err.Error(), "remove it")) // and the fix
}
