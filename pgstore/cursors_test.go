package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/internal/webhook"
	"github.com/licensekit/licensing/pgstore"
)

// TestLeaseCursor holds the sentences of webhook.Cursors, step by step on
// one endpoint, with the holders on two servers.
func TestLeaseCursor(t *testing.T) {
	is := is.New(t)
	a, _, dsn := newStore(t)
	b := secondStore(t, dsn)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const ttl = 30 * time.Second
	var _ webhook.Cursors = a

	cursor, ok, err := a.LeaseCursor(ctx, "crm", "server-a", now, ttl)
	is.NoErr(err)
	is.True(ok)                 // a new endpoint is free
	is.Equal(cursor, uint64(0)) // and starts at 0
	_, ok, err = b.LeaseCursor(ctx, "crm", "server-b", now.Add(ttl-time.Second), ttl)
	is.NoErr(err)
	is.True(!ok) // a's lease runs past now
	is.True(errors.Is(b.CommitCursor(ctx, "crm", "server-b", 5, now, ttl), webhook.ErrLeaseLost))
	is.True(errors.Is(b.CommitCursor(ctx, "other", "server-b", 5, now, ttl), webhook.ErrLeaseLost)) // never leased

	is.NoErr(a.CommitCursor(ctx, "crm", "server-a", 7, now.Add(20*time.Second), ttl)) // renews until 50s
	is.NoErr(a.CommitCursor(ctx, "crm", "server-a", 3, now.Add(20*time.Second), ttl)) // smaller: changes nothing
	_, ok, err = b.LeaseCursor(ctx, "crm", "server-b", now.Add(ttl+time.Second), ttl)
	is.NoErr(err)
	is.True(!ok) // the commit renewed a's lease
	cursor, ok, err = a.LeaseCursor(ctx, "crm", "server-a", now.Add(40*time.Second), ttl)
	is.NoErr(err)
	is.True(ok) // a holder renews its own lease
	is.Equal(cursor, uint64(7))

	cursor, ok, err = b.LeaseCursor(ctx, "crm", "server-b", now.Add(70*time.Second), ttl)
	is.NoErr(err)
	is.True(ok)                 // a's lease ran out: b takes it
	is.Equal(cursor, uint64(7)) // where a left off
	is.True(errors.Is(a.CommitCursor(ctx, "crm", "server-a", 9, now.Add(71*time.Second), ttl), webhook.ErrLeaseLost))
	is.NoErr(b.CommitCursor(ctx, "crm", "server-b", 8, now.Add(71*time.Second), ttl))
	cursor, ok, err = b.LeaseCursor(ctx, "crm", "server-b", now.Add(72*time.Second), ttl)
	is.NoErr(err)
	is.True(ok)
	is.Equal(cursor, uint64(8)) // a's refused commit changed nothing

	cursor, ok, err = a.LeaseCursor(ctx, "billing", "server-a", now, ttl)
	is.NoErr(err)
	is.True(ok) // endpoints are leased one by one
	is.Equal(cursor, uint64(0))
}

// TestLeaseCursorRace: holders on two servers race, round after round, for
// a free endpoint, and for one whose lease ran out: exactly one gets it.
func TestLeaseCursorRace(t *testing.T) {
	is := is.New(t)
	a, _, dsn := newStore(t)
	b := secondStore(t, dsn)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const rounds, perServer, ttl = 40, 4, time.Minute
	races := 0
	race := func(endpoint string, at time.Time) int64 { // new holders each time
		races++
		var won atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for s, st := range []*pgstore.Store{a, b} {
			for g := 0; g < perServer; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, ok, err := st.LeaseCursor(ctx, endpoint, fmt.Sprintf("holder-%d-%d-%d", races, s, g), at, ttl)
					if err != nil {
						t.Error(err)
					}
					if ok {
						won.Add(1)
					}
				}()
			}
		}
		close(start)
		wg.Wait()
		return won.Load()
	}
	for round := 0; round < rounds; round++ {
		endpoint := fmt.Sprint("endpoint-", round)
		is.Equal(race(endpoint, now), int64(1))            // a new endpoint: one holder
		is.Equal(race(endpoint, now.Add(ttl/2)), int64(0)) // held: nobody
		is.Equal(race(endpoint, now.Add(2*ttl)), int64(1)) // run out: one holder again
	}
}

// TestCursorErrorsHoldNoEndpoint: an endpoint is the receiver's URL, whose
// path or query may hold a token, and the deliverer logs the cursors'
// errors: they never repeat it.
func TestCursorErrorsHoldNoEndpoint(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	const endpoint = "https://crm.example.com/hooks/licensing?token=s3cret-in-the-url"
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	_, ok, err := st.LeaseCursor(context.Background(), endpoint, "server-a", now, time.Minute)
	is.NoErr(err)
	is.True(ok)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = st.LeaseCursor(gone, endpoint, "server-a", now, time.Minute)
	is.True(err != nil)
	is.True(!strings.Contains(err.Error(), "s3cret")) // lease
	err = st.CommitCursor(gone, endpoint, "server-a", 1, now, time.Minute)
	is.True(err != nil)
	is.True(!strings.Contains(err.Error(), "s3cret")) // commit
	err = st.CommitCursor(context.Background(), endpoint, "server-a", 1<<63, now, time.Minute)
	is.True(err != nil)
	is.True(!strings.Contains(err.Error(), "s3cret")) // out of range
}
