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

// runLifetime checks the key lifetime part of the contract: the ExpiresAt,
// RotatedTo and RotatedFrom fields, Store.SetKeyExpiry and Store.RotateKey.
// Times are whole milliseconds, which every store keeps exactly.
func runLifetime(t *testing.T, open func(t *testing.T) licensing.Store) {
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	expiry := base.Add(30*24*time.Hour + 123*time.Millisecond)

	// unchanged checks that every way of reading k gives want.
	unchanged := func(t *testing.T, s licensing.Store, want licensing.Key, what string) {
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
	// validated is k after a validation record that sets its instance URL
	// and metrics, as s now holds it.
	validated := func(t *testing.T, s licensing.Store, k licensing.Key, url string) licensing.Key {
		t.Helper()
		r := licensing.ValidationRecord{KeyID: k.ID, FirstAt: base, At: base, InstanceURL: url,
			Metrics: map[string]float64{"userCount": 3}, Violations: []string{}}
		if err := s.RecordValidations(ctx, []licensing.ValidationRecord{r}); err != nil {
			t.Fatal(err)
		}
		k.ApplyValidation(r)
		return k
	}

	t.Run("LifetimeFieldsRoundTrip", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		from, to := NewKey("org-life", base), NewKey("org-life", base)
		k := NewKey("org-life", base.Add(time.Second))
		k.ExpiresAt, k.RotatedFrom, k.RotatedTo = expiry, from.ID, to.ID
		is.NoErr(s.CreateKey(ctx, k))
		unchanged(t, s, k, "a key created with ExpiresAt, RotatedTo, RotatedFrom")
		plain := NewKey("org-life", base)
		is.NoErr(s.CreateKey(ctx, plain))
		got, err := s.KeyByID(ctx, plain.ID)
		is.NoErr(err)
		is.True(got.ExpiresAt.IsZero()) // a key created without an expiry never expires
		is.Equal(got.RotatedTo, "")
		is.Equal(got.RotatedFrom, "")
		local := NewKey("org-life", base)
		local.ExpiresAt = expiry.In(time.FixedZone("UTC+5", 5*3600))
		is.NoErr(s.CreateKey(ctx, local))
		got, err = s.KeyByID(ctx, local.ID)
		is.NoErr(err)
		is.True(got.ExpiresAt.Equal(expiry)) // the same instant, whatever the zone it was given in
	})

	t.Run("SetKeyExpiry", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := NewKey("org-life", base)
		is.NoErr(s.CreateKey(ctx, k))
		k = validated(t, s, k, "https://a.example")

		got, err := s.SetKeyExpiry(ctx, k.ID, expiry)
		is.NoErr(err)
		k.ExpiresAt = expiry
		is.True(Equal(got, k)) // returns the updated key, every other field as it was
		unchanged(t, s, k, "after SetKeyExpiry")

		past := base.Add(-time.Hour) // the store has no clock: an expired key is one whose expiry has passed
		got, err = s.SetKeyExpiry(ctx, k.ID, past)
		is.NoErr(err)
		is.True(got.ExpiresAt.Equal(past))
		later := expiry.Add(365 * 24 * time.Hour)
		got, err = s.SetKeyExpiry(ctx, k.ID, later)
		is.NoErr(err)
		is.True(got.ExpiresAt.Equal(later)) // an expired key is renewed
		k.ExpiresAt = later
		unchanged(t, s, k, "after renewing an expired key")

		now := time.Now() // a reading of the monotonic clock, in another zone
		got, err = s.SetKeyExpiry(ctx, k.ID, now.Add(later.Sub(now)).In(time.FixedZone("UTC+9", 9*3600)))
		is.NoErr(err)
		is.True(got.ExpiresAt.Equal(later)) // the same instant
		unchanged(t, s, k, "after an expiry given with a monotonic reading in another zone")

		got, err = s.SetKeyExpiry(ctx, k.ID, time.Time{})
		is.NoErr(err)
		is.True(got.ExpiresAt.IsZero()) // zero: never expires
		k.ExpiresAt = time.Time{}
		unchanged(t, s, k, "after clearing the expiry")

		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, At: base.Add(time.Minute)}}))
		got, err = s.KeyByID(ctx, k.ID)
		is.NoErr(err)
		is.True(got.ExpiresAt.IsZero()) // a validation record leaves the expiry alone
	})

	t.Run("SetKeyExpiryRefuses", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := NewKey("org-life", base)
		k.ExpiresAt = expiry
		is.NoErr(s.CreateKey(ctx, k))
		revoked, err := s.RevokeKey(ctx, k.ID, base.Add(time.Hour))
		is.NoErr(err)
		_, err = s.SetKeyExpiry(ctx, k.ID, expiry.Add(time.Hour))
		is.True(errors.Is(err, licensing.ErrKeyRevoked)) // a revoked key stays as it is
		_, err = s.SetKeyExpiry(ctx, k.ID, time.Time{})
		is.True(errors.Is(err, licensing.ErrKeyRevoked)) // also for "never expires"
		unchanged(t, s, revoked, "after SetKeyExpiry of a revoked key")

		_, err = s.SetKeyExpiry(ctx, uuid.Must(uuid.NewV7()).String(), expiry)
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // a missing key
		for _, id := range malformedIDs() {
			_, err = s.SetKeyExpiry(ctx, id, expiry)
			is.True(errors.Is(err, licensing.ErrKeyNotFound)) // a malformed id is a missing key
		}
	})

	t.Run("SetKeyExpiryOfARotatedKey", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		old := create(t, s)
		next := NewKey("org-life", base)
		_, err := s.RotateKey(ctx, old.ID, next, base.Add(time.Hour))
		is.NoErr(err)
		got, err := s.SetKeyExpiry(ctx, old.ID, expiry)
		is.NoErr(err) // the store has no policy: a rotated key may be given another end
		is.Equal(got.RotatedTo, next.ID)
		is.True(got.ExpiresAt.Equal(expiry))
		n, err := s.KeyByID(ctx, next.ID)
		is.NoErr(err)
		is.True(n.ExpiresAt.IsZero()) // the new key keeps its own expiry
		is.Equal(n.RotatedFrom, old.ID)
	})

	t.Run("RotateKey", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		old := NewKey("org-life", base)
		old.ExpiresAt = expiry
		is.NoErr(s.CreateKey(ctx, old))
		old = validated(t, s, old, "https://old.example")

		next := NewKey("org-life", base.Add(time.Minute))
		next.InstanceName, next.InstanceURL = "not copied", "https://not-copied.example"
		next.ExpiresAt, next.RotatedFrom, next.RotatedTo = base.Add(time.Hour), "ignored", "ignored too"
		ends := base.Add(7 * 24 * time.Hour)
		got, err := s.RotateKey(ctx, old.ID, next, ends)
		is.NoErr(err)
		wantOld := old
		wantOld.RotatedTo, wantOld.ExpiresAt = next.ID, ends
		if !Equal(got, wantOld) {
			t.Errorf("RotateKey returned %+v, want the updated old key %+v", got, wantOld)
		}
		unchanged(t, s, wantOld, "the old key after rotation")

		wantNew := next
		wantNew.RotatedFrom, wantNew.RotatedTo = old.ID, ""                           // a new key replaced nothing yet
		wantNew.InstanceName, wantNew.InstanceURL = old.InstanceName, old.InstanceURL // taken over
		wantNew.ExpiresAt = expiry                                                    // the old key's expiry, before the overlap cut it
		unchanged(t, s, wantNew, "the new key after rotation")
		is.True(wantNew.Active)
		keys, err := s.ListKeys(ctx, "org-life", licensing.KeyCursor{}, 0)
		is.NoErr(err)
		is.Equal(len(keys), 2) // both keys are listed
	})

	t.Run("RotateKeyEndOfTheOldKey", func(t *testing.T) {
		ends := base.Add(7 * 24 * time.Hour)
		now := time.Now() // a reading of the monotonic clock
		endsMonotonic := now.Add(ends.Sub(now)).In(time.FixedZone("UTC-7", -7*3600))
		tests := []struct {
			name          string
			oldExpiresAt  time.Time
			oldEndsAt     time.Time
			wantOldExpiry time.Time
		}{
			{"never expired: ends with the overlap", time.Time{}, ends, ends},
			{"expires after the overlap: ends with the overlap", ends.Add(time.Millisecond), ends, ends},
			{"expires at the overlap's end", ends, ends, ends},
			{"expires before the overlap ends: keeps its expiry", ends.Add(-time.Millisecond), ends, ends.Add(-time.Millisecond)},
			{"already expired: keeps its expiry", base.Add(-time.Hour), ends, base.Add(-time.Hour)},
			{"zero end, never expired: still never", time.Time{}, time.Time{}, time.Time{}},
			{"zero end: keeps its expiry, never later", ends, time.Time{}, ends},
			{"end in another zone, with a monotonic reading", ends.Add(time.Second), endsMonotonic, ends},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				is := is.New(t)
				s := open(t)
				old := NewKey("org-life", base)
				old.ExpiresAt = tc.oldExpiresAt
				is.NoErr(s.CreateKey(ctx, old))
				next := NewKey("org-life", base)
				got, err := s.RotateKey(ctx, old.ID, next, tc.oldEndsAt)
				is.NoErr(err)
				is.True(got.ExpiresAt.Equal(tc.wantOldExpiry)) // the earlier of its expiry and the overlap's end
				got, err = s.KeyByID(ctx, old.ID)
				is.NoErr(err)
				is.True(got.ExpiresAt.Equal(tc.wantOldExpiry)) // stored so
				n, err := s.KeyByID(ctx, next.ID)
				is.NoErr(err)
				is.True(n.ExpiresAt.Equal(tc.oldExpiresAt)) // the new key takes the old key's own expiry
			})
		}
	})

	t.Run("ExpiryOutOfRange", func(t *testing.T) {
		epoch := time.Unix(0, 0).UTC()
		bad := []time.Time{
			epoch, // the zero of Unix nanoseconds: no store may read it back as "never"
			epoch.In(time.FixedZone("UTC+5", 5*3600)),
			epoch.Add(-time.Second),
			time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC),
			time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC),
			time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
		}
		for _, at := range bad {
			t.Run(at.String(), func(t *testing.T) {
				is := is.New(t)
				s := open(t)
				k := NewKey("org-life", base)
				k.ExpiresAt = at
				is.True(errors.Is(s.CreateKey(ctx, k), licensing.ErrInvalidExpiry)) // CreateKey refuses it
				_, err := s.KeyByID(ctx, k.ID)
				is.True(errors.Is(err, licensing.ErrKeyNotFound)) // and stores nothing

				old := create(t, s)
				_, err = s.SetKeyExpiry(ctx, old.ID, at)
				is.True(errors.Is(err, licensing.ErrInvalidExpiry)) // SetKeyExpiry refuses it
				unchanged(t, s, old, "after a refused SetKeyExpiry")
				next := NewKey("org-life", base)
				_, err = s.RotateKey(ctx, old.ID, next, at)
				is.True(errors.Is(err, licensing.ErrInvalidExpiry)) // RotateKey refuses it as oldEndsAt
				unchanged(t, s, old, "after a refused RotateKey")
				_, err = s.KeyByID(ctx, next.ID)
				is.True(errors.Is(err, licensing.ErrKeyNotFound)) // and stores no new key
			})
		}
		is := is.New(t)
		s := open(t)
		for _, at := range []time.Time{epoch.Add(time.Second), time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC)} {
			k := NewKey("org-life", base)
			k.ExpiresAt = at
			is.NoErr(s.CreateKey(ctx, k))
			unchanged(t, s, k, "a key created with an expiry at the edge of the range")
			k.ExpiresAt = at.Add(time.Millisecond)
			_, err := s.SetKeyExpiry(ctx, k.ID, k.ExpiresAt)
			is.NoErr(err)
			unchanged(t, s, k, "a key given an expiry at the edge of the range")
		}
	})

	t.Run("LifetimeReturnsCopies", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		old := validated(t, s, create(t, s), "https://old.example")
		got, err := s.SetKeyExpiry(ctx, old.ID, expiry)
		is.NoErr(err)
		old.ExpiresAt = expiry
		got.LastMetrics["userCount"] = 42
		got.LastViolations = append(got.LastViolations[:0], "changed")
		unchanged(t, s, old, "after changing what SetKeyExpiry returned")

		next := NewKey("org-life", base)
		next.LastMetrics, next.LastViolations = map[string]float64{"seats": 1}, []string{"v"}
		got, err = s.RotateKey(ctx, old.ID, next, base.Add(time.Hour))
		is.NoErr(err)
		got.LastMetrics["userCount"] = 42
		old.RotatedTo, old.ExpiresAt = next.ID, base.Add(time.Hour)
		unchanged(t, s, old, "after changing what RotateKey returned")
		wantNew := next
		wantNew.LastMetrics, wantNew.LastViolations = map[string]float64{"seats": 1}, []string{"v"}
		wantNew.RotatedFrom, wantNew.InstanceName, wantNew.InstanceURL, wantNew.ExpiresAt = old.ID, old.InstanceName, old.InstanceURL, expiry
		next.LastMetrics["seats"] = 99
		next.LastViolations[0] = "changed"
		unchanged(t, s, wantNew, "after changing the maps of the key given to RotateKey")
	})

	t.Run("RotateKeyRefuses", func(t *testing.T) {
		ends := base.Add(24 * time.Hour)
		tests := []struct {
			name string
			// setup stores what the case needs and returns the old key's id
			// and the new key to rotate to
			setup func(t *testing.T, s licensing.Store) (string, licensing.Key)
			want  error
		}{
			{"missing old key", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				return uuid.Must(uuid.NewV7()).String(), NewKey("org-life", base)
			}, licensing.ErrKeyNotFound},
			{"malformed old id", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				return "{" + uuid.Must(uuid.NewV7()).String() + "}", NewKey("org-life", base)
			}, licensing.ErrKeyNotFound},
			{"revoked old key", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				old := create(t, s)
				if _, err := s.RevokeKey(ctx, old.ID, base); err != nil {
					t.Fatal(err)
				}
				return old.ID, NewKey("org-life", base)
			}, licensing.ErrKeyRevoked},
			{"rotated twice", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				old := create(t, s)
				if _, err := s.RotateKey(ctx, old.ID, NewKey("org-life", base), ends); err != nil {
					t.Fatal(err)
				}
				return old.ID, NewKey("org-life", base)
			}, licensing.ErrKeyRotated},
			{"new id taken by another key", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				old, other := create(t, s), create(t, s)
				next := NewKey("org-life", base)
				next.ID = other.ID
				return old.ID, next
			}, licensing.ErrDuplicateKey},
			{"new id is the old key's", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				old := create(t, s)
				next := NewKey("org-life", base)
				next.ID = old.ID
				return old.ID, next
			}, licensing.ErrDuplicateKey},
			{"new lookup value taken by another key", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				old, other := create(t, s), create(t, s)
				next := NewKey("org-life", base)
				next.LookupValue = other.LookupValue
				return old.ID, next
			}, licensing.ErrDuplicateKey},
			{"new lookup value is the old key's", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				old := create(t, s)
				next := NewKey("org-life", base)
				next.LookupValue = old.LookupValue
				return old.ID, next
			}, licensing.ErrDuplicateKey},
			{"revoked old key and a malformed new id: the old key is checked first", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				old := create(t, s)
				if _, err := s.RevokeKey(ctx, old.ID, base); err != nil {
					t.Fatal(err)
				}
				next := NewKey("org-life", base)
				next.ID = strings.ToUpper(next.ID)
				return old.ID, next
			}, licensing.ErrKeyRevoked},
			{"malformed new id taken by another key in another spelling: the id is checked first", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				old, other := create(t, s), create(t, s)
				next := NewKey("org-life", base)
				next.ID, next.LookupValue = strings.ToUpper(other.ID), other.LookupValue
				return old.ID, next
			}, licensing.ErrInvalidKeyID},
			{"malformed new id", func(t *testing.T, s licensing.Store) (string, licensing.Key) {
				old := create(t, s)
				next := NewKey("org-life", base)
				next.ID = "urn:uuid:" + next.ID
				return old.ID, next
			}, licensing.ErrInvalidKeyID},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				is := is.New(t)
				s := open(t)
				oldID, next := tc.setup(t, s)
				before, _ := s.ListKeys(ctx, "org-life", licensing.KeyCursor{}, 0)
				_, err := s.RotateKey(ctx, oldID, next, ends)
				if !errors.Is(err, tc.want) {
					t.Fatalf("RotateKey: %v, want %v", err, tc.want)
				}
				after, err := s.ListKeys(ctx, "org-life", licensing.KeyCursor{}, 0)
				is.NoErr(err)
				is.Equal(len(after), len(before)) // no key added
				for i := range before {
					unchanged(t, s, before[i], fmt.Sprintf("key %d after a refused rotation", i)) // nothing changed
				}
				ids, lookups := map[string]bool{}, map[string]bool{}
				for _, k := range before {
					ids[k.ID], lookups[k.LookupValue] = true, true
				}
				if _, err := s.KeyByID(ctx, next.ID); !ids[next.ID] && !errors.Is(err, licensing.ErrKeyNotFound) {
					t.Errorf("KeyByID of the refused new key: %v, want ErrKeyNotFound (nothing stored)", err)
				}
				if _, err := s.KeyByLookup(ctx, next.LookupValue); !lookups[next.LookupValue] && !errors.Is(err, licensing.ErrKeyNotFound) {
					t.Errorf("KeyByLookup of the refused new key: %v, want ErrKeyNotFound (nothing stored)", err)
				}
			})
		}
	})

	t.Run("RevokeAfterRotation", func(t *testing.T) {
		for _, which := range []string{"old", "new"} {
			t.Run("revoke the "+which+" key", func(t *testing.T) {
				is := is.New(t)
				s := open(t)
				old := create(t, s)
				next := NewKey("org-life", base)
				_, err := s.RotateKey(ctx, old.ID, next, base.Add(time.Hour))
				is.NoErr(err)
				revoke, keep := old.ID, next.ID
				if which == "new" {
					revoke, keep = next.ID, old.ID
				}
				r, err := s.RevokeKey(ctx, revoke, base.Add(2*time.Hour))
				is.NoErr(err)
				is.True(!r.Active)
				k, err := s.KeyByID(ctx, keep)
				is.NoErr(err)
				is.True(k.Active) // revoking one key of a rotation revokes only that key
				is.True(k.RevokedAt.IsZero())
				o, err := s.KeyByID(ctx, old.ID)
				is.NoErr(err)
				is.Equal(o.RotatedTo, next.ID) // and keeps the link
				n, err := s.KeyByID(ctx, next.ID)
				is.NoErr(err)
				is.Equal(n.RotatedFrom, old.ID)
			})
		}
	})

	t.Run("ValidationsAfterRotation", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		old := create(t, s)
		next := NewKey("org-life", base)
		ends := base.Add(time.Hour)
		_, err := s.RotateKey(ctx, old.ID, next, ends)
		is.NoErr(err)
		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{
			{KeyID: old.ID, FirstAt: base, At: base.Add(time.Minute), InstanceName: "renamed", InstanceURL: "https://b.example",
				Metrics: map[string]float64{"userCount": 9}, Violations: []string{"x"}},
			{KeyID: next.ID, FirstAt: base, At: base.Add(time.Minute), InstanceName: "renamed too", InstanceURL: "https://c.example"},
		}))
		o, err := s.KeyByID(ctx, old.ID)
		is.NoErr(err)
		is.Equal(o.RotatedTo, next.ID)      // a validation record leaves RotatedTo alone
		is.True(o.ExpiresAt.Equal(ends))    // and ExpiresAt
		is.Equal(o.InstanceName, "renamed") // while it applies
		n, err := s.KeyByLookup(ctx, next.LookupValue)
		is.NoErr(err)
		is.Equal(n.RotatedFrom, old.ID) // and RotatedFrom
		is.True(n.ExpiresAt.IsZero())
		is.Equal(n.InstanceURL, "https://c.example")
	})

	t.Run("ConcurrentRotationsOfOneKey", func(t *testing.T) {
		s := open(t)
		for round := 0; round < 8; round++ { // later rounds find the store warm (connections open)
			is := is.New(t)
			old := create(t, s)
			const n = 16
			nexts := make([]licensing.Key, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range nexts {
				nexts[i] = NewKey("org-life", base)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = s.RotateKey(ctx, old.ID, nexts[i], base.Add(time.Hour))
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil:
					is.Equal(winner, -1) // exactly one rotation wins
					winner = i
				case !errors.Is(err, licensing.ErrKeyRotated):
					t.Errorf("rotation %d: %v, want nil or ErrKeyRotated", i, err)
				}
			}
			is.True(winner >= 0) // one rotation wins
			o, err := s.KeyByID(ctx, old.ID)
			is.NoErr(err)
			is.Equal(o.RotatedTo, nexts[winner].ID) // the winner's key replaces the old one
			for i, k := range nexts {
				got, err := s.KeyByID(ctx, k.ID)
				if i == winner {
					is.NoErr(err)
					is.Equal(got.RotatedFrom, old.ID)
					continue
				}
				is.True(errors.Is(err, licensing.ErrKeyNotFound)) // a losing rotation stores nothing
			}
			keys, err := s.ListKeys(ctx, "org-life", licensing.KeyCursor{}, 0)
			is.NoErr(err)
			is.Equal(len(keys), 2*(round+1)) // each round adds the old key and the winner's
		}
	})

	t.Run("ConcurrentRotationAndCreateOfOneLookupValue", func(t *testing.T) {
		s := open(t)
		for round := 0; round < 8; round++ {
			is := is.New(t)
			old := create(t, s)
			next, other := NewKey("org-life", base), NewKey("org-life", base)
			other.LookupValue = next.LookupValue // the new key's lookup value, created at the same moment
			var wg sync.WaitGroup
			var rotErr, createErr error
			start := make(chan struct{})
			wg.Add(2)
			go func() { defer wg.Done(); <-start; _, rotErr = s.RotateKey(ctx, old.ID, next, base.Add(time.Hour)) }()
			go func() { defer wg.Done(); <-start; createErr = s.CreateKey(ctx, other) }()
			close(start)
			wg.Wait()
			if (rotErr == nil) == (createErr == nil) {
				t.Fatalf("round %d: rotation %v, create %v: want exactly one to win", round, rotErr, createErr)
			}
			got, err := s.KeyByLookup(ctx, next.LookupValue)
			is.NoErr(err)
			o, err := s.KeyByID(ctx, old.ID)
			is.NoErr(err)
			if rotErr == nil {
				is.True(errors.Is(createErr, licensing.ErrDuplicateKey))
				is.Equal(got.ID, next.ID) // the lookup value finds the rotation's key
				is.Equal(o.RotatedTo, next.ID)
				continue
			}
			is.True(errors.Is(rotErr, licensing.ErrDuplicateKey))
			is.Equal(got.ID, other.ID)                                                      // the lookup value finds the created key
			unchanged(t, s, old, "the old key after a rotation that lost its lookup value") // and the rotation left nothing
			_, err = s.KeyByID(ctx, next.ID)
			is.True(errors.Is(err, licensing.ErrKeyNotFound))
		}
	})

	t.Run("ConcurrentRotationAndRenewal", func(t *testing.T) {
		s := open(t)
		ends, renewed := base.Add(time.Hour), base.Add(2*time.Hour)
		for round := 0; round < 8; round++ {
			is := is.New(t)
			old := NewKey("org-life", base)
			old.ExpiresAt = expiry
			is.NoErr(s.CreateKey(ctx, old))
			next := NewKey("org-life", base)
			var wg sync.WaitGroup
			var rotErr, renewErr error
			start := make(chan struct{})
			wg.Add(2)
			go func() { defer wg.Done(); <-start; _, rotErr = s.RotateKey(ctx, old.ID, next, ends) }()
			go func() { defer wg.Done(); <-start; _, renewErr = s.SetKeyExpiry(ctx, old.ID, renewed) }()
			close(start)
			wg.Wait()
			is.NoErr(rotErr)
			is.NoErr(renewErr)
			o, err := s.KeyByID(ctx, old.ID)
			is.NoErr(err)
			n, err := s.KeyByID(ctx, next.ID)
			is.NoErr(err)
			is.Equal(o.RotatedTo, next.ID)
			switch {
			case n.ExpiresAt.Equal(expiry): // rotation first: the renewal then set the old key's end
				is.True(o.ExpiresAt.Equal(renewed))
			case n.ExpiresAt.Equal(renewed): // renewal first: the rotation took it over and cut the old key
				is.True(o.ExpiresAt.Equal(ends))
			default:
				t.Fatalf("round %d: new key expires %v, old key %v: neither order of the two writes", round, n.ExpiresAt, o.ExpiresAt)
			}
		}
	})

	t.Run("ConcurrentRotationAndRevocation", func(t *testing.T) {
		for round := 0; round < 8; round++ {
			is := is.New(t)
			s := open(t)
			old := create(t, s)
			next := NewKey("org-life", base)
			var wg sync.WaitGroup
			var rotErr, revErr error
			wg.Add(2)
			go func() { defer wg.Done(); _, rotErr = s.RotateKey(ctx, old.ID, next, base.Add(time.Hour)) }()
			go func() { defer wg.Done(); _, revErr = s.RevokeKey(ctx, old.ID, base) }()
			wg.Wait()
			is.NoErr(revErr) // revocation always succeeds
			o, err := s.KeyByID(ctx, old.ID)
			is.NoErr(err)
			is.True(!o.Active)
			n, err := s.KeyByID(ctx, next.ID)
			if rotErr == nil {
				is.NoErr(err) // the rotation came first: the new key exists, active
				is.True(n.Active)
				is.Equal(o.RotatedTo, next.ID)
			} else {
				is.True(errors.Is(rotErr, licensing.ErrKeyRevoked)) // the revocation came first
				is.True(errors.Is(err, licensing.ErrKeyNotFound))   // and no new key
				is.Equal(o.RotatedTo, "")
			}
		}
	})
}

// create stores a new key of org-life with an instance name and an expiry
// and returns it.
func create(t *testing.T, s licensing.Store) licensing.Key {
	t.Helper()
	k := NewKey("org-life", time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	if err := s.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	return k
}
