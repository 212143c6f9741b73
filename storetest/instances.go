package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/licensekit/licensing"
)

// runInstances checks the instances and seats part of the contract:
// Key.MaxInstances, Store.SetMaxInstances, SeatInstance, Instances,
// ReleaseInstance, ValidationRecord.InstanceID, and what RotateKey copies.
// Times are whole milliseconds, which every store keeps exactly.
func runInstances(t *testing.T, open func(t *testing.T) licensing.Store) {
	ctx := context.Background()
	base := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	const lease = 72 * time.Hour

	// seat seats instance id on key at time at under limit.
	seat := func(s licensing.Store, key, id string, at time.Time, limit int) (int, bool, error) {
		return s.SeatInstance(ctx, key, licensing.Instance{ID: id, LastSeenAt: at}, limit, lease)
	}
	// ids returns the ids of the key's instances at now, in the order
	// Instances gives them.
	ids := func(t *testing.T, s licensing.Store, key string, now time.Time) []string {
		t.Helper()
		list, err := s.Instances(ctx, key, now, lease)
		if err != nil {
			t.Fatalf("Instances: %v", err)
		}
		out := []string{}
		for _, in := range list {
			out = append(out, in.ID)
		}
		return out
	}
	// keyUnchanged checks that every way of reading the key gives want.
	keyUnchanged := func(t *testing.T, s licensing.Store, want licensing.Key, what string) {
		t.Helper()
		got, err := s.KeyByID(ctx, want.ID)
		if err != nil || !Equal(got, want) {
			t.Errorf("%s: KeyByID gives %+v, %v; want %+v", what, got, err, want)
		}
		got, err = s.KeyByLookup(ctx, want.LookupValue)
		if err != nil || !Equal(got, want) {
			t.Errorf("%s: KeyByLookup gives %+v, %v; want %+v", what, got, err, want)
		}
		keys, err := s.ListKeys(ctx, want.OrganizationID, licensing.KeyCursor{}, 0)
		if err != nil {
			t.Errorf("%s: ListKeys: %v", what, err)
		}
		for _, k := range keys {
			if k.ID == want.ID && !Equal(k, want) {
				t.Errorf("%s: ListKeys gives %+v, want %+v", what, k, want)
			}
		}
	}
	newKey := func(t *testing.T, s licensing.Store, max int) licensing.Key {
		t.Helper()
		k := NewKey("org-seats", base)
		k.MaxInstances = max
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		return k
	}

	t.Run("MaxInstancesRoundTrip", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		for _, n := range []int{0, 1, 7, licensing.MaxInstancesLimit} {
			k := NewKey("org-seats", base)
			k.MaxInstances = n
			k.ExpiresAt = base.Add(24 * time.Hour)
			is.NoErr(s.CreateKey(ctx, k))
			keyUnchanged(t, s, k, fmt.Sprintf("a key created with MaxInstances %d", n))
			got, err := s.KeyByID(ctx, k.ID)
			is.NoErr(err)
			is.Equal(got.MaxInstances, n) // stored as given
		}
	})

	t.Run("MaxInstancesOutOfRange", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		for _, n := range []int{-1, licensing.MaxInstancesLimit + 1, 1 << 40} {
			k := NewKey("org-seats", base)
			k.MaxInstances = n
			is.True(errors.Is(s.CreateKey(ctx, k), licensing.ErrInvalidMaxInstances)) // CreateKey refuses it
			_, err := s.KeyByID(ctx, k.ID)
			is.True(errors.Is(err, licensing.ErrKeyNotFound)) // and stores nothing
			_, err = s.KeyByLookup(ctx, k.LookupValue)
			is.True(errors.Is(err, licensing.ErrKeyNotFound))
		}
		k := NewKey("org-seats", base)
		k.MaxInstances, k.ID = -1, strings.ToUpper(k.ID)
		err := s.CreateKey(ctx, k)
		is.True(errors.Is(err, licensing.ErrInvalidKeyID)) // the id is checked first
		is.True(!errors.Is(err, licensing.ErrInvalidMaxInstances))
		k = NewKey("org-seats", base)
		k.MaxInstances, k.ExpiresAt = -1, time.Unix(0, 0)
		err = s.CreateKey(ctx, k)
		is.True(errors.Is(err, licensing.ErrInvalidExpiry)) // then the expiry
		is.True(!errors.Is(err, licensing.ErrInvalidMaxInstances))
		keys, err := s.ListKeys(ctx, "org-seats", licensing.KeyCursor{}, 0)
		is.NoErr(err)
		is.Equal(len(keys), 0) // nothing stored
	})

	t.Run("SetMaxInstances", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := NewKey("org-seats", base)
		k.ExpiresAt = base.Add(time.Hour)
		is.NoErr(s.CreateKey(ctx, k))
		r := licensing.ValidationRecord{KeyID: k.ID, FirstAt: base, At: base, InstanceURL: "https://a.example",
			Metrics: map[string]float64{"userCount": 2}, Violations: []string{}}
		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{r}))
		k.ApplyValidation(r)

		got, err := s.SetMaxInstances(ctx, k.ID, 3)
		is.NoErr(err)
		k.MaxInstances = 3
		is.True(Equal(got, k)) // returns the updated key, every other field as it was
		keyUnchanged(t, s, k, "after SetMaxInstances")
		got, err = s.SetMaxInstances(ctx, k.ID, licensing.MaxInstancesLimit)
		is.NoErr(err)
		is.Equal(got.MaxInstances, licensing.MaxInstancesLimit)
		got, err = s.SetMaxInstances(ctx, k.ID, 0)
		is.NoErr(err)
		is.Equal(got.MaxInstances, 0) // 0: no limit of its own
		k.MaxInstances = 0
		keyUnchanged(t, s, k, "after clearing MaxInstances")

		_, err = s.SetMaxInstances(ctx, k.ID, 5)
		is.NoErr(err)
		k.MaxInstances = 5
		for _, n := range []int{-1, licensing.MaxInstancesLimit + 1} {
			_, err = s.SetMaxInstances(ctx, k.ID, n)
			is.True(errors.Is(err, licensing.ErrInvalidMaxInstances)) // out of range
		}
		keyUnchanged(t, s, k, "after a refused SetMaxInstances")
		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, At: base.Add(time.Minute)}}))
		got, err = s.KeyByID(ctx, k.ID)
		is.NoErr(err)
		is.Equal(got.MaxInstances, 5) // a validation record leaves it alone
	})

	t.Run("SetMaxInstancesRefuses", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 2)
		revoked, err := s.RevokeKey(ctx, k.ID, base.Add(time.Hour))
		is.NoErr(err)
		_, err = s.SetMaxInstances(ctx, k.ID, 4)
		is.True(errors.Is(err, licensing.ErrKeyRevoked)) // a revoked key stays as it is
		_, err = s.SetMaxInstances(ctx, k.ID, 0)
		is.True(errors.Is(err, licensing.ErrKeyRevoked))
		keyUnchanged(t, s, revoked, "after SetMaxInstances of a revoked key")
		_, err = s.SetMaxInstances(ctx, uuid.Must(uuid.NewV7()).String(), 4)
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // a missing key
		for _, id := range malformedIDs() {
			_, err = s.SetMaxInstances(ctx, id, 4)
			is.True(errors.Is(err, licensing.ErrKeyNotFound)) // a malformed id is a missing key
		}
	})

	t.Run("SeatInstance", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 0)
		t1, t2, t3 := base.Add(time.Minute), base.Add(2*time.Minute), base.Add(3*time.Minute)
		n, added, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "prod", URL: "https://a.example/",
			FirstSeenAt: base.Add(-time.Hour), LastSeenAt: t1, Metrics: map[string]float64{"userCount": 3}}, 0, lease)
		is.NoErr(err)
		is.Equal(n, 1) // one instance holds a seat
		is.True(added) // a new one
		n, added, err = seat(s, k.ID, "b", t2, 0)
		is.NoErr(err)
		is.Equal(n, 2)
		is.True(added)
		n, added, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: t3}, 0, lease)
		is.NoErr(err)
		is.Equal(n, 2)  // a known instance takes no other seat
		is.True(!added) // and is not new

		list, err := s.Instances(ctx, k.ID, t3, lease)
		is.NoErr(err)
		is.Equal(len(list), 2)
		a, b := list[0], list[1]
		is.Equal(a.ID, "a") // most recently seen first
		is.Equal(b.ID, "b")
		is.True(a.FirstSeenAt.Equal(t1))      // the first sighting, not the caller's FirstSeenAt
		is.True(a.LastSeenAt.Equal(t3))       // the latest
		is.Equal(a.Name, "prod")              // kept when a later sighting has none
		is.Equal(a.URL, "https://a.example/") // as sent
		is.Equal(a.Metrics["userCount"], 3.0) // kept when a later sighting has none
		is.True(b.FirstSeenAt.Equal(t2))
		is.True(b.LastSeenAt.Equal(t2))
		is.Equal(b.Name, "")
		is.Equal(b.Metrics, map[string]float64(nil)) // none sent: nil

		_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "renamed", URL: "https://a2.example",
			LastSeenAt: t2, Metrics: map[string]float64{"userCount": 4}}, 0, lease)
		is.NoErr(err)
		list, err = s.Instances(ctx, k.ID, t3, lease)
		is.NoErr(err)
		is.Equal(list[0].ID, "a")
		is.True(list[0].LastSeenAt.Equal(t3)) // an earlier sighting never moves LastSeenAt back
		is.Equal(list[0].Name, "renamed")     // but updates what it carries
		is.Equal(list[0].URL, "https://a2.example")
		is.Equal(list[0].Metrics, map[string]float64{"userCount": 4})
		is.True(list[0].FirstSeenAt.Equal(t1))

		_, _, err = seat(s, k.ID, "c", t3, 0) // seen at the same time as a: ordered by id
		is.NoErr(err)
		is.Equal(ids(t, s, k.ID, t3), []string{"a", "c", "b"})
		got, err := s.KeyByID(ctx, k.ID)
		is.NoErr(err)
		is.True(Equal(got, k)) // seating touches no field of the key
	})

	t.Run("SeatLimit", func(t *testing.T) {
		for _, limit := range []int{1, 2, 3} {
			t.Run(fmt.Sprint(limit), func(t *testing.T) {
				is := is.New(t)
				s := open(t)
				k := newKey(t, s, limit)
				at := base
				for i := 0; i < limit; i++ {
					at = at.Add(time.Minute)
					n, added, err := seat(s, k.ID, fmt.Sprintf("i%d", i), at, limit)
					is.NoErr(err) // a seat is free
					is.Equal(n, i+1)
					is.True(added)
				}
				before, err := s.Instances(ctx, k.ID, at, lease)
				is.NoErr(err)
				_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "late", Name: "late", LastSeenAt: at.Add(time.Minute),
					Metrics: map[string]float64{"userCount": 1}}, limit, lease)
				is.True(errors.Is(err, licensing.ErrSeatLimit)) // every seat is taken
				after, err := s.Instances(ctx, k.ID, at, lease)
				is.NoErr(err)
				is.Equal(after, before) // and nothing changed
				is.Equal(ids(t, s, k.ID, at.Add(time.Minute)), ids(t, s, k.ID, at))
				n, added, err := seat(s, k.ID, "i0", at.Add(2*time.Minute), limit)
				is.NoErr(err) // an instance that holds a seat keeps validating
				is.Equal(n, limit)
				is.True(!added)
				_, _, err = seat(s, k.ID, "late", at.Add(3*time.Minute), limit)
				is.True(errors.Is(err, licensing.ErrSeatLimit)) // still full
				n, added, err = seat(s, k.ID, "late", at.Add(3*time.Minute), limit+1)
				is.NoErr(err) // the limit is the caller's: one more seat
				is.Equal(n, limit+1)
				is.True(added)
			})
		}
	})

	t.Run("LoweredLimitFreesNoSeat", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 3)
		for i, id := range []string{"a", "b", "c"} {
			_, _, err := seat(s, k.ID, id, base.Add(time.Duration(i)*time.Minute), 3)
			is.NoErr(err)
		}
		got, err := s.SetMaxInstances(ctx, k.ID, 1)
		is.NoErr(err)
		is.Equal(got.MaxInstances, 1)
		now := base.Add(time.Hour)
		is.Equal(ids(t, s, k.ID, now), []string{"c", "b", "a"}) // every instance keeps its seat
		n, added, err := seat(s, k.ID, "a", now, 1)
		is.NoErr(err) // and keeps validating
		is.Equal(n, 3)
		is.True(!added)
		_, _, err = seat(s, k.ID, "d", now, 1)
		is.True(errors.Is(err, licensing.ErrSeatLimit)) // a new one finds no seat
	})

	t.Run("LapsedInstanceFindsNoSeatUnderALoweredLimit", func(t *testing.T) {
		// An instance whose lease ran out holds no seat, even while the key
		// still remembers it (no new instance came since to forget it): it
		// takes one back only when one is free.
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 2)
		_, _, err := seat(s, k.ID, "a", base, 2)
		is.NoErr(err)
		_, _, err = seat(s, k.ID, "b", base.Add(time.Hour), 2)
		is.NoErr(err)
		_, err = s.SetMaxInstances(ctx, k.ID, 1)
		is.NoErr(err)
		later := base.Add(lease + time.Minute) // a's lease has run out, b's has not
		is.Equal(ids(t, s, k.ID, later), []string{"b"})
		_, _, err = seat(s, k.ID, "a", later, 1)
		is.True(errors.Is(err, licensing.ErrSeatLimit)) // b holds the one seat
		is.Equal(ids(t, s, k.ID, later), []string{"b"})
		n, _, err := seat(s, k.ID, "b", later, 1)
		is.NoErr(err) // b keeps validating
		is.Equal(n, 1)

		free := later.Add(lease) // b has not validated since: the seat is free
		n, added, err := seat(s, k.ID, "a", free, 1)
		is.NoErr(err)
		is.Equal(n, 1)
		is.True(added) // a takes a seat anew
		list, err := s.Instances(ctx, k.ID, free, lease)
		is.NoErr(err)
		is.Equal(len(list), 1)
		is.True(list[0].FirstSeenAt.Equal(free)) // from when it took it back
	})

	t.Run("LeaseFreesSeats", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 1)
		_, _, err := seat(s, k.ID, "a", base, 1)
		is.NoErr(err)
		almost := base.Add(lease - time.Millisecond)
		is.Equal(ids(t, s, k.ID, almost), []string{"a"}) // seen less than lease ago: holds its seat
		_, _, err = seat(s, k.ID, "b", almost, 1)
		is.True(errors.Is(err, licensing.ErrSeatLimit)) // so b finds none
		out := base.Add(lease)
		is.Equal(ids(t, s, k.ID, out), []string{}) // seen lease ago: no longer
		n, added, err := seat(s, k.ID, "b", out, 1)
		is.NoErr(err) // b takes the freed seat
		is.Equal(n, 1)
		is.True(added)
		is.Equal(ids(t, s, k.ID, out), []string{"b"})
		_, _, err = seat(s, k.ID, "a", out.Add(time.Millisecond), 1)
		is.True(errors.Is(err, licensing.ErrSeatLimit)) // a comes back as a new instance: no seat

		k2 := newKey(t, s, 2)
		_, _, err = seat(s, k2.ID, "x", base, 2)
		is.NoErr(err)
		_, _, err = seat(s, k2.ID, "y", base.Add(time.Hour), 2)
		is.NoErr(err)
		later := base.Add(lease + time.Minute)
		is.Equal(ids(t, s, k2.ID, later), []string{"y"}) // Instances leaves out what the lease dropped
		n, _, err = seat(s, k2.ID, "z", later, 2)
		is.NoErr(err)
		is.Equal(n, 2) // x's seat is free: y and z hold one each
	})

	t.Run("ReleaseInstance", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 1)
		_, _, err := seat(s, k.ID, "a", base, 1)
		is.NoErr(err)
		is.NoErr(s.ReleaseInstance(ctx, k.ID, "a"))
		is.Equal(ids(t, s, k.ID, base), []string{}) // forgotten
		n, added, err := seat(s, k.ID, "b", base.Add(time.Minute), 1)
		is.NoErr(err) // its seat is free at once
		is.Equal(n, 1)
		is.True(added)
		is.True(errors.Is(s.ReleaseInstance(ctx, k.ID, "a"), licensing.ErrInstanceNotFound)) // released twice
		is.True(errors.Is(s.ReleaseInstance(ctx, k.ID, "nope"), licensing.ErrInstanceNotFound))
		is.True(errors.Is(s.ReleaseInstance(ctx, k.ID, "B"), licensing.ErrInstanceNotFound)) // ids are exact
		is.Equal(ids(t, s, k.ID, base.Add(time.Minute)), []string{"b"})                      // b untouched
		is.NoErr(s.ReleaseInstance(ctx, k.ID, "b"))
		n, added, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "back", LastSeenAt: base.Add(time.Hour)}, 1, lease)
		is.NoErr(err)
		is.Equal(n, 1)
		is.True(added) // a released instance that comes back is new
		list, err := s.Instances(ctx, k.ID, base.Add(time.Hour), lease)
		is.NoErr(err)
		is.True(list[0].FirstSeenAt.Equal(base.Add(time.Hour))) // first seen again
		is.Equal(list[0].Name, "back")

		other := newKey(t, s, 0)
		_, _, err = seat(s, other.ID, "a", base, 0)
		is.NoErr(err)
		is.NoErr(s.ReleaseInstance(ctx, other.ID, "a"))
		is.Equal(ids(t, s, k.ID, base.Add(time.Hour)), []string{"a"}) // releasing one key's instance leaves another key's
		is.True(errors.Is(s.ReleaseInstance(ctx, uuid.Must(uuid.NewV7()).String(), "a"), licensing.ErrKeyNotFound))
		for _, id := range malformedIDs() {
			is.True(errors.Is(s.ReleaseInstance(ctx, id, "a"), licensing.ErrKeyNotFound)) // a malformed id is a missing key
		}
	})

	t.Run("InstancesOfMissingKeys", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 0)
		list, err := s.Instances(ctx, k.ID, base, lease)
		is.NoErr(err)
		is.True(list != nil) // a key without instances: empty, not nil
		is.Equal(len(list), 0)
		for _, id := range append(malformedIDs(), uuid.Must(uuid.NewV7()).String()) {
			_, _, err = seat(s, id, "a", base, 0)
			is.True(errors.Is(err, licensing.ErrKeyNotFound)) // SeatInstance of a missing key
			_, err = s.Instances(ctx, id, base, lease)
			is.True(errors.Is(err, licensing.ErrKeyNotFound)) // Instances of a missing key
		}
		_, _, err = seat(s, strings.ToUpper(k.ID), "a", base, 0)
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // canonical ids only
		is.Equal(ids(t, s, k.ID, base), []string{})
	})

	t.Run("RecordValidationsWithInstance", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 0)
		_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "first", LastSeenAt: base}, 0, lease)
		is.NoErr(err)
		t1 := base.Add(time.Hour)
		m := map[string]float64{"userCount": 7}
		recs := []licensing.ValidationRecord{
			{KeyID: k.ID, InstanceID: "a", FirstAt: base, At: t1, InstanceName: "prod", InstanceURL: "https://a.example",
				Metrics: m, Violations: []string{}},
			{KeyID: k.ID, InstanceID: "unknown", FirstAt: base, At: t1, InstanceName: "ghost"},
		}
		is.NoErr(s.RecordValidations(ctx, recs))
		m["userCount"] = 99
		list, err := s.Instances(ctx, k.ID, t1, lease)
		is.NoErr(err)
		is.Equal(len(list), 1) // a record never adds an instance
		a := list[0]
		is.Equal(a.ID, "a")
		is.True(a.LastSeenAt.Equal(t1)) // moved to the record's At
		is.True(a.FirstSeenAt.Equal(base))
		is.Equal(a.Name, "prod")
		is.Equal(a.URL, "https://a.example")
		is.Equal(a.Metrics, map[string]float64{"userCount": 7}) // copied from the batch

		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{
			{KeyID: k.ID, InstanceID: "a", FirstAt: base, At: base.Add(time.Minute)},
		}))
		list, err = s.Instances(ctx, k.ID, t1, lease)
		is.NoErr(err)
		is.True(list[0].LastSeenAt.Equal(t1)) // an earlier record never moves it back
		is.Equal(list[0].Name, "prod")        // and one without a name keeps it
		is.Equal(list[0].Metrics, map[string]float64{"userCount": 7})

		got, err := s.KeyByID(ctx, k.ID)
		is.NoErr(err)
		want := k
		for _, r := range recs {
			want.ApplyValidation(r)
		}
		want.ApplyValidation(licensing.ValidationRecord{KeyID: k.ID, FirstAt: base, At: base.Add(time.Minute)})
		want.LastMetrics = map[string]float64{"userCount": 7}
		is.True(Equal(got, want)) // the key is updated as without InstanceID

		is.NoErr(s.ReleaseInstance(ctx, k.ID, "a"))
		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, InstanceID: "a", At: t1.Add(time.Hour)}}))
		is.Equal(ids(t, s, k.ID, t1), []string{}) // a record of a released instance does not bring it back
	})

	t.Run("UnlimitedKeyKeepsAtMostMaxInstancesLimit", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 0)
		at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
		for i := 0; i < licensing.MaxInstancesLimit; i++ {
			n, added, err := seat(s, k.ID, fmt.Sprintf("i%04d", i), at(i), 0)
			if err != nil || n != i+1 || !added {
				t.Fatalf("seat %d: %d, %v, %v; want %d, true, nil", i, n, added, err, i+1)
			}
		}
		end := at(licensing.MaxInstancesLimit)
		_, _, err := seat(s, k.ID, "i0000", end, 0) // i0000 is seen again: i0001 is now the least recently seen
		is.NoErr(err)
		n, added, err := seat(s, k.ID, "new", end.Add(time.Second), 0)
		is.NoErr(err) // no limit: a new instance always gets in
		is.True(added)
		is.Equal(n, licensing.MaxInstancesLimit) // but the key keeps at most MaxInstancesLimit
		got := ids(t, s, k.ID, end.Add(time.Second))
		is.Equal(len(got), licensing.MaxInstancesLimit)
		is.Equal(got[0], "new")
		is.Equal(got[1], "i0000")
		is.Equal(got[len(got)-1], "i0002") // i0001, the least recently seen, is forgotten
		for _, id := range got {
			is.True(id != "i0001")
		}
	})

	t.Run("RotateKeyCopiesMaxInstancesNotInstances", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		old := newKey(t, s, 2)
		_, _, err := seat(s, old.ID, "a", base, 2)
		is.NoErr(err)
		next := NewKey("org-seats", base.Add(time.Minute))
		next.MaxInstances = 7 // ignored
		_, err = s.RotateKey(ctx, old.ID, next, base.Add(time.Hour))
		is.NoErr(err)
		n, err := s.KeyByID(ctx, next.ID)
		is.NoErr(err)
		is.Equal(n.MaxInstances, 2)                      // taken over from the old key
		is.Equal(ids(t, s, next.ID, base), []string{})   // the instances are not
		is.Equal(ids(t, s, old.ID, base), []string{"a"}) // and the old key keeps its own
		o, err := s.KeyByID(ctx, old.ID)
		is.NoErr(err)
		is.Equal(o.MaxInstances, 2)
		_, _, err = seat(s, next.ID, "a", base.Add(time.Minute), 2)
		is.NoErr(err) // each instance takes a seat on the new key when it first uses it

		plain := newKey(t, s, 0)
		next = NewKey("org-seats", base)
		next.MaxInstances = 7
		_, err = s.RotateKey(ctx, plain.ID, next, base.Add(time.Hour))
		is.NoErr(err)
		n, err = s.KeyByID(ctx, next.ID)
		is.NoErr(err)
		is.Equal(n.MaxInstances, 0) // no limit is taken over too
	})

	t.Run("ConcurrentSeatsForTheLastSeat", func(t *testing.T) {
		s := open(t)
		for round := 0; round < 8; round++ { // later rounds find the store warm
			is := is.New(t)
			const limit, racers = 3, 16
			k := newKey(t, s, limit)
			for i := 0; i < limit-1; i++ {
				_, _, err := seat(s, k.ID, fmt.Sprintf("held%d", i), base, limit)
				is.NoErr(err)
			}
			errs := make([]error, racers)
			addeds := make([]bool, racers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, addeds[i], errs[i] = seat(s, k.ID, fmt.Sprintf("racer%d", i), base.Add(time.Minute), limit)
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil:
					is.Equal(winner, -1) // exactly one new instance wins
					is.True(addeds[i])
					winner = i
				case !errors.Is(err, licensing.ErrSeatLimit):
					t.Errorf("round %d, racer %d: %v, want nil or ErrSeatLimit", round, i, err)
				}
			}
			is.True(winner >= 0) // the last seat is taken
			got := ids(t, s, k.ID, base.Add(time.Minute))
			is.Equal(len(got), limit)
			is.Equal(got[0], fmt.Sprintf("racer%d", winner)) // by the winner
		}
	})

	t.Run("InstancesAreCopies", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := newKey(t, s, 0)
		m := map[string]float64{"userCount": 1}
		_, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: base, Metrics: m}, 0, lease)
		is.NoErr(err)
		m["userCount"] = 99 // the caller's map, changed after SeatInstance
		list, err := s.Instances(ctx, k.ID, base, lease)
		is.NoErr(err)
		is.Equal(list[0].Metrics["userCount"], 1.0) // the store copied it
		list[0].Metrics["userCount"] = 42
		list[0].Name = "changed"
		again, err := s.Instances(ctx, k.ID, base, lease)
		is.NoErr(err)
		is.Equal(again[0].Metrics["userCount"], 1.0) // callers get copies
		is.Equal(again[0].Name, "")

		m2 := map[string]float64{"userCount": 2}
		_, _, err = s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: base.Add(time.Second), Metrics: m2}, 0, lease)
		is.NoErr(err)
		m2["userCount"] = 99 // the map of a known instance's update
		again, err = s.Instances(ctx, k.ID, base.Add(time.Second), lease)
		is.NoErr(err)
		is.Equal(again[0].Metrics["userCount"], 2.0)
	})
}
