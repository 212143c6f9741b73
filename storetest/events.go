package storetest

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/licensekit/licensing"
)

// runEvents checks the licensing.EventLog part of the contract, for a store
// that implements it: idempotent appends in Seq order, Events (filters,
// paging, newest first), EventsAfter, PruneEvents by age and count (Seqs
// never reused), ExpiringKeys (order, ties, paging), every field of an
// Event kept, and concurrent appends.
func runEvents(t *testing.T, open func(t *testing.T) licensing.Store) {
	if _, ok := open(t).(licensing.EventLog); !ok {
		t.Log("the store does not implement licensing.EventLog: its part of the suite is not run")
		return
	}
	ctx := context.Background()
	base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	openLog := func(t *testing.T) (licensing.Store, licensing.EventLog) {
		s := open(t)
		return s, s.(licensing.EventLog)
	}
	ev := func(org, key string, typ licensing.EventType, at time.Time) licensing.Event {
		return licensing.Event{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Time: at,
			OrganizationID: org, KeyID: key, MaskedKey: "0123abcd...89abcdef"}
	}
	ids := func(events []licensing.Event) []string {
		out := make([]string, len(events))
		for i, e := range events {
			out[i] = e.ID
		}
		return out
	}

	t.Run("EventsAppendIdempotent", func(t *testing.T) {
		is := is.New(t)
		_, l := openLog(t)
		a := ev("org-e", "k1", licensing.EventKeyCreated, base)
		b := ev("org-e", "k1", licensing.EventKeyRevoked, base.Add(time.Second))
		is.NoErr(l.AppendEvents(ctx, []licensing.Event{a, b}))
		c := ev("org-e", "k2", licensing.EventKeyCreated, base.Add(2*time.Second))
		is.NoErr(l.AppendEvents(ctx, []licensing.Event{b, c, c})) // b again, c twice
		all, err := l.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(ids(all), []string{a.ID, b.ID, c.ID}) // each id once, in append order
		for i := 1; i < len(all); i++ {
			is.True(all[i].Seq > all[i-1].Seq) // Seqs increase
		}
		is.True(all[0].Seq > 0) // a Seq is never 0 in a log
		again, err := l.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(again[1].Seq, all[1].Seq) // a skipped duplicate keeps its Seq
		for _, bad := range []licensing.Event{
			{Type: licensing.EventKeyCreated, Time: base, OrganizationID: "org-e"},
			{ID: uuid.NewString(), Time: base, OrganizationID: "org-e"},
			{ID: uuid.NewString(), Type: licensing.EventKeyCreated, OrganizationID: "org-e"},
		} {
			is.True(l.AppendEvents(ctx, []licensing.Event{ev("org-e", "k3", licensing.EventKeyCreated, base), bad}) != nil) // an event without ID, Type or Time is refused
		}
		all, err = l.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(len(all), 3) // a refused batch stores nothing
	})

	t.Run("EventsFieldsKept", func(t *testing.T) {
		is := is.New(t)
		_, l := openLog(t)
		e := licensing.Event{
			ID: uuid.NewString(), Type: licensing.EventSeatLimitReached, Time: base.Add(123 * time.Millisecond),
			KeyID: uuid.NewString(), OrganizationID: "org-f", MaskedKey: "0123abcd...89abcdef", UserID: "user-1",
			Outcome: licensing.OutcomeRevoked, InstanceCount: 3, ExpiresAt: base.Add(48*time.Hour + 7*time.Millisecond),
			RotatedTo: uuid.NewString(), InstanceID: "inst-\u00e9 1", MaxInstances: 1000,
		}
		is.NoErr(l.AppendEvents(ctx, []licensing.Event{e}))
		after, err := l.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		listed, err := l.Events(ctx, "org-f", licensing.EventQuery{})
		is.NoErr(err)
		for _, got := range []licensing.Event{after[0], listed[0]} {
			is.True(got.Seq > 0)
			is.True(got.Time.Equal(e.Time) && got.ExpiresAt.Equal(e.ExpiresAt)) // times kept to the millisecond
			got.Seq, got.Time, got.ExpiresAt = 0, e.Time, e.ExpiresAt
			is.Equal(got, e) // every field of the event kept
		}
		zero := licensing.Event{ID: uuid.NewString(), Type: licensing.EventKeyCreated, Time: base, OrganizationID: "org-f"}
		is.NoErr(l.AppendEvents(ctx, []licensing.Event{zero}))
		listed, err = l.Events(ctx, "org-f", licensing.EventQuery{Limit: 1})
		is.NoErr(err)
		is.True(listed[0].ExpiresAt.IsZero()) // a zero expiry stays zero
		listed[0].Seq = 0
		is.Equal(listed[0].ID, zero.ID)
		is.Equal(listed[0].KeyID, "") // empty fields stay empty
	})

	t.Run("EventsQuery", func(t *testing.T) {
		is := is.New(t)
		_, l := openLog(t)
		var want []licensing.Event // org-q's, oldest first
		for i := range 12 {
			key := []string{"k1", "k2", "k3"}[i%3]
			typ := []licensing.EventType{licensing.EventKeyCreated, licensing.EventKeyShared}[i%2]
			e := ev("org-q", key, typ, base.Add(time.Duration(i)*time.Second))
			want = append(want, e)
			is.NoErr(l.AppendEvents(ctx, []licensing.Event{e, ev("org-other", key, typ, e.Time)}))
		}
		newest := func(filter func(licensing.Event) bool) []string {
			var out []string
			for i := len(want) - 1; i >= 0; i-- {
				if filter(want[i]) {
					out = append(out, want[i].ID)
				}
			}
			return out
		}
		got, err := l.Events(ctx, "org-q", licensing.EventQuery{})
		is.NoErr(err)
		is.Equal(ids(got), newest(func(licensing.Event) bool { return true })) // the organization's events, newest first
		got, err = l.Events(ctx, "org-q", licensing.EventQuery{KeyID: "k2"})
		is.NoErr(err)
		is.Equal(ids(got), newest(func(e licensing.Event) bool { return e.KeyID == "k2" })) // one key's
		got, err = l.Events(ctx, "org-q", licensing.EventQuery{Type: licensing.EventKeyShared})
		is.NoErr(err)
		is.Equal(ids(got), newest(func(e licensing.Event) bool { return e.Type == licensing.EventKeyShared })) // one type's
		got, err = l.Events(ctx, "org-q", licensing.EventQuery{KeyID: "k1", Type: licensing.EventKeyShared})
		is.NoErr(err)
		is.Equal(ids(got), newest(func(e licensing.Event) bool { return e.KeyID == "k1" && e.Type == licensing.EventKeyShared })) // both

		// Paging: Before the last Seq of each page, Limit at a time.
		for _, q := range []licensing.EventQuery{{Limit: 5}, {Limit: 2, KeyID: "k3"}, {Limit: 1, Type: licensing.EventKeyCreated}} {
			var paged []string
			for {
				page, err := l.Events(ctx, "org-q", q)
				is.NoErr(err)
				is.True(len(page) <= q.Limit) // at most Limit
				paged = append(paged, ids(page)...)
				if len(page) < q.Limit {
					break
				}
				q.Before = page[len(page)-1].Seq
			}
			all, err := l.Events(ctx, "org-q", licensing.EventQuery{KeyID: q.KeyID, Type: q.Type})
			is.NoErr(err)
			is.Equal(paged, ids(all)) // the pages make up the whole list, in order
		}
		none, err := l.Events(ctx, "org-none", licensing.EventQuery{})
		is.NoErr(err)
		is.True(none != nil) // no events: an empty, non-nil slice
		is.Equal(len(none), 0)
		none, err = l.Events(ctx, "org-q", licensing.EventQuery{KeyID: "k-none"})
		is.NoErr(err)
		is.True(none != nil && len(none) == 0)
		first, err := l.EventsAfter(ctx, 0, 1)
		is.NoErr(err)
		none, err = l.Events(ctx, "org-q", licensing.EventQuery{Before: first[0].Seq})
		is.NoErr(err)
		is.Equal(len(none), 0) // nothing before the first
	})

	t.Run("EventsAfter", func(t *testing.T) {
		is := is.New(t)
		_, l := openLog(t)
		var want []string
		for i := range 7 {
			e := ev(fmt.Sprintf("org-%d", i%2), "k", licensing.EventKeyCreated, base.Add(time.Duration(i)*time.Second))
			want = append(want, e.ID)
			is.NoErr(l.AppendEvents(ctx, []licensing.Event{e}))
		}
		var got []string
		var cursor uint64
		for {
			page, err := l.EventsAfter(ctx, cursor, 3)
			is.NoErr(err)
			is.True(len(page) <= 3)
			if len(page) == 0 {
				break
			}
			got = append(got, ids(page)...)
			cursor = page[len(page)-1].Seq
		}
		is.Equal(got, want) // every organization's events, oldest first, page by page
		tail, err := l.EventsAfter(ctx, cursor+1000, 0)
		is.NoErr(err)
		is.Equal(len(tail), 0) // nothing after the last
		tail, err = l.EventsAfter(ctx, math.MaxUint64, 0)
		is.NoErr(err)
		is.Equal(len(tail), 0) // nothing after the greatest Seq there can be
	})

	t.Run("EventsPrune", func(t *testing.T) {
		is := is.New(t)
		_, l := openLog(t)
		var all []licensing.Event
		for i := range 10 {
			e := ev("org-p", "k", licensing.EventKeyCreated, base.Add(time.Duration(i)*time.Hour))
			all = append(all, e)
			is.NoErr(l.AppendEvents(ctx, []licensing.Event{e}))
		}
		n, err := l.PruneEvents(ctx, base.Add(3*time.Hour), 0)
		is.NoErr(err)
		is.Equal(n, 3) // the events older than before
		left, err := l.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(ids(left), ids(all[3:]))
		n, err = l.PruneEvents(ctx, time.Time{}, 4)
		is.NoErr(err)
		is.Equal(n, 3) // all but the newest keep
		left, err = l.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(ids(left), ids(all[6:]))
		listed, err := l.Events(ctx, "org-p", licensing.EventQuery{KeyID: "k"})
		is.NoErr(err)
		is.Equal(len(listed), 4) // Events sees what is left
		n, err = l.PruneEvents(ctx, base, 10)
		is.NoErr(err)
		is.Equal(n, 0) // nothing to prune
		last := left[len(left)-1].Seq
		is.NoErr(l.AppendEvents(ctx, []licensing.Event{all[0]})) // a pruned id may come again
		n, err = l.PruneEvents(ctx, time.Time{}, 1)
		is.NoErr(err)
		is.Equal(n, 4)
		fresh := ev("org-p", "k", licensing.EventKeyRevoked, base.Add(time.Hour))
		is.NoErr(l.AppendEvents(ctx, []licensing.Event{fresh}))
		left, err = l.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(len(left), 2)
		is.True(left[0].Seq > last && left[1].Seq > left[0].Seq) // Seqs are never reused, pruned or not
	})

	t.Run("ExpiringKeys", func(t *testing.T) {
		is := is.New(t)
		s, l := openLog(t)
		now := base
		mk := func(org string, expires time.Time) licensing.Key {
			k := NewKey(org, base.Add(-time.Hour))
			k.ExpiresAt = expires
			is.NoErr(s.CreateKey(ctx, k))
			return k
		}
		mk("org-x", time.Time{})                      // never expires
		mk("org-x", now.Add(-time.Hour))              // expired already
		late := mk("org-x", now.Add(30*24*time.Hour)) // beyond until
		var want []licensing.Key
		tie := now.Add(48 * time.Hour)
		for i := range 5 {
			want = append(want, mk(fmt.Sprintf("org-%d", i), tie)) // ties, ordered by ID
		}
		want = append([]licensing.Key{mk("org-y", now.Add(time.Hour))}, want...)
		want = append(want, mk("org-y", now.Add(72*time.Hour)))
		revoked := mk("org-y", now.Add(2*time.Hour))
		_, err := s.RevokeKey(ctx, revoked.ID, now)
		is.NoErr(err)
		sortExpiring(want)
		until := now.Add(14 * 24 * time.Hour)
		var got []string
		after, afterID := now, ""
		for {
			page, err := l.ExpiringKeys(ctx, until, after, afterID, 2)
			is.NoErr(err)
			is.True(len(page) <= 2)
			if len(page) == 0 {
				break
			}
			for _, k := range page {
				got = append(got, k.ID)
				is.True(k.Active)
			}
			after, afterID = page[len(page)-1].ExpiresAt, page[len(page)-1].ID
		}
		var wantIDs []string
		for _, k := range want {
			wantIDs = append(wantIDs, k.ID)
		}
		is.Equal(got, wantIDs) // active keys expiring in (now, until], by expiry then id, page by page (ties split across pages)
		all, err := l.ExpiringKeys(ctx, late.ExpiresAt, now, "", 0)
		is.NoErr(err)
		is.Equal(len(all), len(want)+1) // until is inclusive; limit 0: all
		full, err := l.ExpiringKeys(ctx, until, now, "", 1)
		is.NoErr(err)
		is.True(Equal(full[0], want[0])) // the whole key
		past, err := l.ExpiringKeys(ctx, until, tie, "ffffffff-ffff-ffff-ffff-ffffffffffff", 0)
		is.NoErr(err)
		is.Equal(len(past), 1) // after the greatest id at tie: past every key that expires then (the Service's later scans start so)
		is.Equal(past[0].ID, want[len(want)-1].ID)
	})

	t.Run("EventsConcurrentAppends", func(t *testing.T) {
		is := is.New(t)
		_, l := openLog(t)
		const writers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					e := ev("org-c", fmt.Sprintf("w%d", w), licensing.EventKeyCreated, base.Add(time.Duration(i)*time.Millisecond))
					e.InstanceCount = i
					if err := l.AppendEvents(ctx, []licensing.Event{e}); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			is.NoErr(err)
		}
		all, err := l.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(len(all), writers*each) // no append lost
		next := map[string]int{}
		for i, e := range all {
			if i > 0 {
				is.True(e.Seq > all[i-1].Seq) // one Seq each, increasing
			}
			is.Equal(e.InstanceCount, next[e.KeyID]) // each writer's events in the order it appended them
			next[e.KeyID]++
		}
	})
}

// sortExpiring orders keys as ExpiringKeys does: ExpiresAt, then ID.
func sortExpiring(keys []licensing.Key) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0; j-- {
			a, b := keys[j-1], keys[j]
			if a.ExpiresAt.Before(b.ExpiresAt) || a.ExpiresAt.Equal(b.ExpiresAt) && a.ID < b.ID {
				break
			}
			keys[j-1], keys[j] = b, a
		}
	}
}
