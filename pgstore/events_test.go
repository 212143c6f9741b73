package pgstore_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/storetest"
)

func newEvent(org, keyID string, typ licensing.EventType, at time.Time) licensing.Event {
	return licensing.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Time: at, KeyID: keyID, OrganizationID: org}
}

// TestEventRoundTrip: every field of licensing.Event comes back as it was
// appended (Seq set by the log). The event sets every field, so a field
// added to Event fails here until the store keeps it.
func TestEventRoundTrip(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	ctx := context.Background()
	e := licensing.Event{ID: "ev-1", Seq: 999, Type: licensing.EventSeatLimitReached,
		Time: time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC), KeyID: "0190e0a0-0000-7000-8000-000000000001",
		OrganizationID: "org-1", MaskedKey: "0123abcd...89abcdef", UserID: "user-1", Outcome: licensing.OutcomeValid,
		InstanceCount: 3, ExpiresAt: time.Date(2027, 1, 2, 3, 4, 5, 6, time.UTC), RotatedTo: "0190e0a0-0000-7000-8000-000000000002",
		InstanceID: "https://a.example", MaxInstances: 2}
	v := reflect.ValueOf(e)
	for i := 0; i < v.NumField(); i++ {
		is.True(!v.Field(i).IsZero()) // every field set: a new one must be kept too
	}
	is.NoErr(st.AppendEvents(ctx, []licensing.Event{e}))
	got, err := st.Events(ctx, "org-1", licensing.EventQuery{})
	is.NoErr(err)
	is.Equal(len(got), 1)
	is.True(got[0].Seq > 0) // the log's, not the caller's
	want := e
	want.Seq = got[0].Seq
	is.Equal(got[0], want) // every field, times to the nanosecond, in UTC
	after, err := st.EventsAfter(ctx, 0, 10)
	is.NoErr(err)
	is.Equal(after, got)

	local := e // another zone comes back as the same instant in UTC
	local.ID, local.Time = "ev-2", e.Time.In(time.FixedZone("x", 3600))
	is.NoErr(st.AppendEvents(ctx, []licensing.Event{local}))
	got, err = st.Events(ctx, "org-1", licensing.EventQuery{Limit: 1})
	is.NoErr(err)
	is.True(got[0].Time.Equal(e.Time))
	is.Equal(got[0].Time.Location(), time.UTC)
}

// TestEvents: Events newest first, filtered, paged by Before and Limit;
// appending an id again is skipped; seqs grow.
func TestEvents(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	k1, k2 := storetest.NewKey("org-1", base).ID, storetest.NewKey("org-1", base).ID
	var all []licensing.Event
	for i := 0; i < 6; i++ {
		typ := licensing.EventKeyCreated
		if i%2 == 1 {
			typ = licensing.EventKeyRevoked
		}
		key := k1
		if i >= 3 {
			key = k2
		}
		all = append(all, newEvent("org-1", key, typ, base.Add(time.Duration(i)*time.Minute)))
	}
	is.NoErr(st.AppendEvents(ctx, all[:2]))
	is.NoErr(st.AppendEvents(ctx, append([]licensing.Event{all[0]}, all[2:]...))) // all[0] again: skipped
	is.NoErr(st.AppendEvents(ctx, []licensing.Event{newEvent("org-2", k1, licensing.EventKeyCreated, base)}))
	is.NoErr(st.AppendEvents(ctx, nil))
	twice := newEvent("org-3", k1, licensing.EventKeyCreated, base)
	is.NoErr(st.AppendEvents(ctx, []licensing.Event{twice, twice})) // twice in one batch: kept once
	once, err := st.Events(ctx, "org-3", licensing.EventQuery{})
	is.NoErr(err)
	is.Equal(len(once), 1)

	ids := func(events []licensing.Event) []string {
		var out []string
		for _, e := range events {
			out = append(out, e.ID)
		}
		return out
	}
	got, err := st.Events(ctx, "org-1", licensing.EventQuery{})
	is.NoErr(err)
	is.Equal(len(got), 6) // the duplicate is not stored twice, org-2's is not here
	for i := range got {
		is.Equal(got[i].ID, all[5-i].ID) // newest first
		if i > 0 {
			is.True(got[i].Seq < got[i-1].Seq)
		}
	}

	// paging: Before the last one seen, Limit per page
	var paged []licensing.Event
	q := licensing.EventQuery{Limit: 4}
	for {
		page, err := st.Events(ctx, "org-1", q)
		is.NoErr(err)
		paged = append(paged, page...)
		if len(page) < q.Limit {
			break
		}
		q.Before = page[len(page)-1].Seq
	}
	is.Equal(ids(paged), ids(got))

	tests := []struct {
		name string
		q    licensing.EventQuery
		want []string
	}{
		{"key", licensing.EventQuery{KeyID: k1}, []string{all[2].ID, all[1].ID, all[0].ID}},
		{"type", licensing.EventQuery{Type: licensing.EventKeyRevoked}, []string{all[5].ID, all[3].ID, all[1].ID}},
		{"key and type", licensing.EventQuery{KeyID: k2, Type: licensing.EventKeyCreated}, []string{all[4].ID}},
		{"before", licensing.EventQuery{Before: got[2].Seq}, ids(got[3:])},
		{"before and key, limited", licensing.EventQuery{Before: got[0].Seq, KeyID: k2, Limit: 1}, []string{all[4].ID}},
		{"before a seq beyond int64", licensing.EventQuery{Before: 1 << 63}, ids(got)},
		{"no match", licensing.EventQuery{Type: licensing.EventKeyExpiring}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			got, err := st.Events(ctx, "org-1", tc.q)
			is.NoErr(err)
			is.True(got != nil) // empty, non-nil
			is.Equal(ids(got), tc.want)
		})
	}
	none, err := st.Events(ctx, "org-none", licensing.EventQuery{})
	is.NoErr(err)
	is.True(none != nil)
	is.Equal(len(none), 0)

	after, err := st.EventsAfter(ctx, got[3].Seq, 2)
	is.NoErr(err)
	is.Equal(ids(after), []string{all[3].ID, all[4].ID}) // oldest first, every organization, at most limit
	after, err = st.EventsAfter(ctx, got[0].Seq, 0)
	is.NoErr(err)
	is.Equal(len(after), 2) // org-2's and org-3's
	is.Equal(after[0].OrganizationID, "org-2")

	err = st.AppendEvents(ctx, []licensing.Event{newEvent("org-1", k1, licensing.EventKeyCreated, base), {ID: "x", Type: licensing.EventKeyCreated}})
	is.True(err != nil) // an event without a time: refused, and nothing appended
	got2, err := st.Events(ctx, "org-1", licensing.EventQuery{})
	is.NoErr(err)
	is.Equal(len(got2), 6)
}

// TestAppendEventsCommitOrder: writers on two pools (two servers) append
// concurrently while a reader follows the log with EventsAfter from its
// cursor (the last Seq it read): it sees every event, each once, in Seq
// order. A log whose seqs were taken in another order than commits would
// let the cursor pass an event committed late.
func TestAppendEventsCommitOrder(t *testing.T) {
	is := is.New(t)
	a, _, dsn := newStore(t)
	b := secondStore(t, dsn)
	reader := secondStore(t, dsn)
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const writers, batches = 8, 60
	var wg sync.WaitGroup
	appended := make(chan string, writers*batches*3)
	for w := 0; w < writers; w++ {
		st := a
		if w%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < batches; i++ {
				var batch []licensing.Event
				for j := 0; j <= i%3; j++ {
					batch = append(batch, newEvent(fmt.Sprint("org-", w), "", licensing.EventKeyCreated, base))
				}
				if err := st.AppendEvents(ctx, batch); err != nil {
					t.Error(err)
					return
				}
				for _, e := range batch {
					appended <- e.ID
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var cursor uint64
	var read []string
	follow := func() {
		events, err := reader.EventsAfter(ctx, cursor, 50)
		is.NoErr(err)
		for _, e := range events {
			is.True(e.Seq > cursor) // in Seq order
			cursor = e.Seq
			read = append(read, e.ID)
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		follow()
	}
	for n := -1; n != len(read); { // the rest, once every writer is done
		n = len(read)
		follow()
	}
	close(appended)
	var want []string
	for id := range appended {
		want = append(want, id)
	}
	slices.Sort(want)
	slices.Sort(read)
	is.Equal(len(read), len(want)) // nothing missed, nothing twice
	is.Equal(read, want)
}

func TestPruneEvents(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var events []licensing.Event
	for i := 0; i < 10; i++ {
		events = append(events, newEvent("org-1", "", licensing.EventKeyCreated, base.Add(time.Duration(i)*time.Hour)))
	}
	is.NoErr(st.AppendEvents(ctx, events))
	n, err := st.PruneEvents(ctx, base.Add(2*time.Hour), 0)
	is.NoErr(err)
	is.Equal(n, 2) // the two older than two hours in
	n, err = st.PruneEvents(ctx, time.Time{}, 5)
	is.NoErr(err)
	is.Equal(n, 3) // all but the newest five
	n, err = st.PruneEvents(ctx, base.Add(-time.Hour), 5)
	is.NoErr(err)
	is.Equal(n, 0)
	left, err := st.EventsAfter(ctx, 0, 0)
	is.NoErr(err)
	is.Equal(len(left), 5)
	is.Equal(left[0].ID, events[5].ID)
	last := left[4].Seq
	n, err = st.PruneEvents(ctx, base.Add(24*time.Hour), 0)
	is.NoErr(err)
	is.Equal(n, 5)
	next := newEvent("org-1", "", licensing.EventKeyCreated, base)
	is.NoErr(st.AppendEvents(ctx, []licensing.Event{next}))
	left, err = st.EventsAfter(ctx, 0, 0)
	is.NoErr(err)
	is.Equal(len(left), 1)
	is.True(left[0].Seq > last) // seqs are never reused
}

func TestExpiringKeys(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mk := func(expires time.Time) licensing.Key {
		k := storetest.NewKey("org-1", now.Add(-time.Hour))
		k.ExpiresAt = expires
		is.NoErr(st.CreateKey(ctx, k))
		return k
	}
	day := 24 * time.Hour
	past := mk(now.Add(-day))       // expired already
	soon1 := mk(now.Add(day))       // two keys expiring at one instant
	soon2 := mk(now.Add(day))       //
	later := mk(now.Add(10 * day))  //
	mk(now.Add(20 * day))           // beyond until
	mk(time.Time{})                 // never expires
	revoked := mk(now.Add(2 * day)) //
	_, err := st.RevokeKey(ctx, revoked.ID, now)
	is.NoErr(err)
	until := now.Add(14 * day)
	first, second := soon1, soon2
	if second.ID < first.ID {
		first, second = second, first
	}
	ids := func(keys []licensing.Key) []string {
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return out
	}
	got, err := st.ExpiringKeys(ctx, until, now, "", 0)
	is.NoErr(err)
	is.Equal(ids(got), []string{first.ID, second.ID, later.ID}) // (ExpiresAt, ID) order, active ones only
	is.True(got[0].ExpiresAt.Equal(now.Add(day)))
	page, err := st.ExpiringKeys(ctx, until, now, "", 1)
	is.NoErr(err)
	is.Equal(ids(page), []string{first.ID})
	page, err = st.ExpiringKeys(ctx, until, page[0].ExpiresAt, page[0].ID, 1)
	is.NoErr(err)
	is.Equal(ids(page), []string{second.ID}) // the next one at the same instant
	page, err = st.ExpiringKeys(ctx, until, page[0].ExpiresAt, page[0].ID, 5)
	is.NoErr(err)
	is.Equal(ids(page), []string{later.ID})
	page, err = st.ExpiringKeys(ctx, until, now.Add(-2*day), "", 1)
	is.NoErr(err)
	is.Equal(ids(page), []string{past.ID}) // from an earlier position: the expired one too
	none, err := st.ExpiringKeys(ctx, now, now, "", 0)
	is.NoErr(err)
	is.True(none != nil)
	is.Equal(len(none), 0)
}
