// Package storetest is the conformance suite of the licensing.Store
// contract. Every store in this repository (memory, file, PostgreSQL) runs
// it, and so should a store of your own, from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) licensing.Store { return openEmptyStore(t) })
//	}
//
// It checks creation and lookup, duplicates, key-id rules and the order of
// those checks, listing order, revocation, validation records, copies,
// concurrent use, and key lifetime: the ExpiresAt, RotatedTo and RotatedFrom
// fields, SetKeyExpiry, and RotateKey (what it copies, the end of the old
// key, every refusal leaving the store unchanged, one winner among
// concurrent rotations, and between a rotation and a create of the same
// lookup value), expiries outside ValidExpiry refused, and copies of what
// the lifetime writes take and return. It checks instances and seats:
// Key.MaxInstances and its range, SetMaxInstances, SeatInstance (the seat
// limit, the lease, the MaxInstancesLimit bound of a key without a limit,
// one winner among concurrent instances racing for the last seat),
// Instances, ReleaseInstance, validation records that name an instance, and
// RotateKey taking over MaxInstances but not the instances. For a store that
// implements licensing.EventLog it checks the event log too: idempotent
// appends in Seq order, Events (filters, paging, newest first),
// EventsAfter, PruneEvents by age and count with Seqs never reused,
// ExpiringKeys (order, ties, paging), every Event field kept, and
// concurrent appends.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/licensekit/licensing"
)

// Run checks the Store contract on stores made by open, which must return a
// new, empty store each time it is called.
func Run(t *testing.T, open func(t *testing.T) licensing.Store) {
	ctx := context.Background()
	base := time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)

	t.Run("CreateAndFind", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := NewKey("org-1", base)
		is.NoErr(s.CreateKey(ctx, k))
		got, err := s.KeyByID(ctx, k.ID)
		is.NoErr(err)
		is.True(Equal(got, k)) // KeyByID returns what was stored
		got, err = s.KeyByLookup(ctx, k.LookupValue)
		is.NoErr(err)
		is.True(Equal(got, k)) // KeyByLookup returns what was stored
	})

	t.Run("Missing", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		_, err := s.KeyByID(ctx, uuid.Must(uuid.NewV7()).String())
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // KeyByID of a missing id
		_, err = s.KeyByLookup(ctx, "nope")
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // KeyByLookup of a missing value
		_, err = s.RevokeKey(ctx, uuid.Must(uuid.NewV7()).String(), base)
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // RevokeKey of a missing id
		keys, err := s.ListKeys(ctx, "org-none", licensing.KeyCursor{}, 0)
		is.NoErr(err)
		is.True(keys != nil) // an empty list is not nil
		is.Equal(len(keys), 0)
		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: uuid.Must(uuid.NewV7()).String(), At: base}})) // unknown ids are skipped
	})

	t.Run("Duplicates", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := NewKey("org-1", base)
		is.NoErr(s.CreateKey(ctx, k))
		sameID := NewKey("org-1", base)
		sameID.ID = k.ID
		is.True(errors.Is(s.CreateKey(ctx, sameID), licensing.ErrDuplicateKey)) // duplicate id
		sameLookup := NewKey("org-1", base)
		sameLookup.LookupValue = k.LookupValue
		is.True(errors.Is(s.CreateKey(ctx, sameLookup), licensing.ErrDuplicateKey)) // duplicate lookup value
		_, err := s.KeyByID(ctx, sameLookup.ID)
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // a rejected key is not stored
		keys, err := s.ListKeys(ctx, "org-1", licensing.KeyCursor{}, 0)
		is.NoErr(err)
		is.Equal(len(keys), 1)
	})

	t.Run("MalformedKeyIDs", func(t *testing.T) {
		for _, id := range malformedIDs() {
			t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
				is := is.New(t)
				s := open(t)
				k := NewKey("org-1", base)
				k.ID = id
				is.True(errors.Is(s.CreateKey(ctx, k), licensing.ErrInvalidKeyID)) // CreateKey refuses a non-canonical id
				_, err := s.KeyByLookup(ctx, k.LookupValue)
				is.True(errors.Is(err, licensing.ErrKeyNotFound)) // and stores nothing
				_, err = s.KeyByID(ctx, id)
				is.True(errors.Is(err, licensing.ErrKeyNotFound)) // KeyByID of a malformed id is a miss
				_, err = s.RevokeKey(ctx, id, base)
				is.True(errors.Is(err, licensing.ErrKeyNotFound))                                       // RevokeKey of a malformed id is a miss
				is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: id, At: base}})) // skipped
				keys, err := s.ListKeys(ctx, "org-1", licensing.KeyCursor{}, 0)
				is.NoErr(err)
				is.Equal(len(keys), 0)
			})
		}
	})

	t.Run("KeyIDOfAnotherCase", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := NewKey("org-1", base)
		is.NoErr(s.CreateKey(ctx, k))
		_, err := s.KeyByID(ctx, strings.ToUpper(k.ID))
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // ids are looked up in canonical form only
		_, err = s.RevokeKey(ctx, strings.ToUpper(k.ID), base)
		is.True(errors.Is(err, licensing.ErrKeyNotFound))
		got, err := s.KeyByID(ctx, k.ID)
		is.NoErr(err)
		is.True(got.Active) // the upper-case revoke touched nothing
	})

	t.Run("OrderOfChecks", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := NewKey("org-1", base)
		is.NoErr(s.CreateKey(ctx, k))
		bad := NewKey("org-1", base)
		bad.ID = strings.ToUpper(k.ID)
		bad.LookupValue = k.LookupValue
		err := s.CreateKey(ctx, bad)
		is.True(errors.Is(err, licensing.ErrInvalidKeyID))  // the id is checked before duplicates
		is.True(!errors.Is(err, licensing.ErrDuplicateKey)) // one error, not both
		both := NewKey("org-1", base)
		both.ID, both.LookupValue = k.ID, k.LookupValue
		is.True(errors.Is(s.CreateKey(ctx, both), licensing.ErrDuplicateKey)) // duplicate id and lookup: one ErrDuplicateKey
		got, err := s.KeyByID(ctx, k.ID)
		is.NoErr(err)
		is.True(Equal(got, k)) // the first key is untouched
	})

	t.Run("ListNewestFirstPerOrganization", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		var want []string
		for i := 0; i < 5; i++ {
			k := NewKey("org-a", base.Add(time.Duration(i)*time.Minute))
			is.NoErr(s.CreateKey(ctx, k))
			want = append([]string{k.ID}, want...)
			is.NoErr(s.CreateKey(ctx, NewKey("org-b", base)))
		}
		keys, err := s.ListKeys(ctx, "org-a", licensing.KeyCursor{}, 0)
		is.NoErr(err)
		is.Equal(len(keys), 5)
		for i, k := range keys {
			is.Equal(k.ID, want[i])             // newest first
			is.Equal(k.OrganizationID, "org-a") // only the organization's keys
		}
	})

	t.Run("Pages", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		var all []licensing.Key
		for i := 0; i < 7; i++ {
			k := NewKey("org-p", base.Add(time.Duration(i/2)*time.Minute)) // pairs share a creation time
			is.NoErr(s.CreateKey(ctx, k))
			all = append(all, k)
		}
		is.NoErr(s.CreateKey(ctx, NewKey("org-q", base)))
		sortKeys(all)
		for _, limit := range []int{1, 2, 3, 7, 8} {
			var got []string
			var after licensing.KeyCursor
			for pages := 0; pages < 20; pages++ {
				keys, err := s.ListKeys(ctx, "org-p", after, limit)
				is.NoErr(err)
				is.True(keys != nil)
				is.True(len(keys) <= limit) // at most limit keys
				for _, k := range keys {
					got = append(got, k.ID)
				}
				if len(keys) < limit {
					break
				}
				after = keys[len(keys)-1].Cursor()
			}
			var want []string
			for _, k := range all {
				want = append(want, k.ID)
			}
			is.Equal(got, want) // pages walk the whole list, newest first, each key once
		}
		gone := all[2]
		keys, err := s.ListKeys(ctx, "org-p", licensing.KeyCursor{CreatedAt: gone.CreatedAt, ID: gone.ID}, 0)
		is.NoErr(err)
		is.Equal(len(keys), 4) // after a cursor: every key listed after it, limit 0 is all
		keys, err = s.ListKeys(ctx, "org-p", all[len(all)-1].Cursor(), 5)
		is.NoErr(err)
		is.Equal(len(keys), 0) // after the last key: an empty page
		is.True(keys != nil)
		keys, err = s.ListKeys(ctx, "org-p", licensing.KeyCursor{CreatedAt: base.Add(time.Hour), ID: uuid.Must(uuid.NewV7()).String()}, 0)
		is.NoErr(err)
		is.Equal(len(keys), 7) // a cursor need not name a stored key
	})

	t.Run("RevokeIsIdempotentAndFinal", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := NewKey("org-1", base)
		is.NoErr(s.CreateKey(ctx, k))
		got, err := s.RevokeKey(ctx, k.ID, base.Add(time.Hour))
		is.NoErr(err)
		is.True(!got.Active)
		is.True(got.RevokedAt.Equal(base.Add(time.Hour)))
		got, err = s.RevokeKey(ctx, k.ID, base.Add(2*time.Hour))
		is.NoErr(err)
		is.True(got.RevokedAt.Equal(base.Add(time.Hour))) // the first revocation time stays
		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, At: base.Add(3 * time.Hour)}}))
		got, err = s.KeyByLookup(ctx, k.LookupValue)
		is.NoErr(err)
		is.True(!got.Active) // a validation record never reactivates
	})

	t.Run("RecordValidations", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k1, k2 := NewKey("org-1", base), NewKey("org-1", base)
		is.NoErr(s.CreateKey(ctx, k1))
		is.NoErr(s.CreateKey(ctx, k2))
		t1, t2 := base.Add(time.Hour), base.Add(2*time.Hour)
		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{
			{KeyID: k1.ID, FirstAt: t1, At: t1, InstanceName: "prod", InstanceURL: "https://a.example",
				Metrics: map[string]float64{"userCount": 3}, Violations: []string{}},
			{KeyID: k2.ID, FirstAt: t1, At: t1},
		}))
		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{
			{KeyID: k1.ID, FirstAt: t2, At: t2, Metrics: map[string]float64{"userCount": 30}, Violations: []string{"too many"}},
		}))
		got, err := s.KeyByID(ctx, k1.ID)
		is.NoErr(err)
		is.True(got.ActivatedAt.Equal(t1))     // first validation activates
		is.True(got.LastValidatedAt.Equal(t2)) // last validation is the latest
		is.Equal(got.InstanceName, "prod")     // kept when a later record has none
		is.Equal(got.InstanceURL, "https://a.example")
		is.Equal(got.LastMetrics["userCount"], 30.0)
		is.Equal(got.LastViolations, []string{"too many"})
		got, err = s.KeyByID(ctx, k2.ID)
		is.NoErr(err)
		is.Equal(got.InstanceName, k2.InstanceName) // nothing to replace
		is.True(got.LastValidatedAt.Equal(t1))
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		k := NewKey("org-1", base)
		is.NoErr(s.CreateKey(ctx, k))
		m := map[string]float64{"userCount": 1}
		is.NoErr(s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, At: base, Metrics: m}}))
		m["userCount"] = 99
		got, err := s.KeyByID(ctx, k.ID)
		is.NoErr(err)
		is.Equal(got.LastMetrics["userCount"], 1.0) // the store copied the batch's map
		got.LastMetrics["userCount"] = 42
		again, err := s.KeyByID(ctx, k.ID)
		is.NoErr(err)
		is.Equal(again.LastMetrics["userCount"], 1.0) // callers get copies
	})

	t.Run("Concurrent", func(t *testing.T) {
		is := is.New(t)
		s := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		ids := make(chan string, 64)
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := NewKey("org-c", base)
				if err := s.CreateKey(ctx, k); err != nil {
					errs <- err
					return
				}
				ids <- k.ID
				if err := s.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: k.ID, At: base}}); err != nil {
					errs <- err
				}
				if _, err := s.RevokeKey(ctx, k.ID, base); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		close(ids)
		for err := range errs {
			is.NoErr(err)
		}
		keys, err := s.ListKeys(ctx, "org-c", licensing.KeyCursor{}, 0)
		is.NoErr(err)
		is.Equal(len(keys), 32) // every concurrent create is listed
		for _, k := range keys {
			is.True(!k.Active)
		}
	})

	runLifetime(t, open)
	runInstances(t, open)
	runEvents(t, open)
}

// malformedIDs are key ids no store accepts: every one is a UUID in some
// spelling, or close to one, but not the canonical lower-case form.
func malformedIDs() []string {
	id := uuid.Must(uuid.NewV7()).String()
	return []string{
		"",
		strings.ToUpper(id),
		strings.ReplaceAll(id, "-", ""),
		"{" + id + "}",
		"urn:uuid:" + id,
		" " + id,
		id + "\n",
		id[:35] + "g",
		id[:8] + "_" + id[9:],
		id[:35] + "\u00e9"[:1],
		"00000000-0000-0000-0000-00000000000",
		strings.Repeat("a", 36),
		id + id,
	}
}

var seq struct {
	sync.Mutex
	n int
}

// NewKey returns a key of org created at t with a fresh id and a unique
// lookup value. It is not a usable license key; stores need not know.
func NewKey(org string, t time.Time) licensing.Key {
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	return licensing.Key{
		ID:             uuid.Must(uuid.NewV7()).String(),
		OrganizationID: org,
		LookupValue:    fmt.Sprintf("lookup-%d-%s", n, uuid.NewString()),
		Digest:         fmt.Sprintf("digest-%d", n),
		MaskedKey:      "0123abcd...89abcdef",
		InstanceName:   fmt.Sprintf("instance %d", n),
		Active:         true,
		CreatedAt:      t,
	}
}

// Equal reports whether two keys hold the same values (times compared with
// Equal, so a store may return another location or monotonic reading).
func Equal(a, b licensing.Key) bool {
	return a.ID == b.ID && a.OrganizationID == b.OrganizationID && a.LookupValue == b.LookupValue &&
		a.Digest == b.Digest && a.MaskedKey == b.MaskedKey && a.InstanceName == b.InstanceName &&
		a.InstanceURL == b.InstanceURL && a.Active == b.Active && a.CreatedAt.Equal(b.CreatedAt) &&
		a.ActivatedAt.Equal(b.ActivatedAt) && a.LastValidatedAt.Equal(b.LastValidatedAt) &&
		a.RevokedAt.Equal(b.RevokedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.RotatedTo == b.RotatedTo &&
		a.RotatedFrom == b.RotatedFrom && fmt.Sprint(a.LastMetrics) == fmt.Sprint(b.LastMetrics) &&
		fmt.Sprint(a.LastViolations) == fmt.Sprint(b.LastViolations) && a.MaxInstances == b.MaxInstances
}

// sortKeys orders keys newest first: CreatedAt descending, then ID
// descending, the order of ListKeys.
func sortKeys(keys []licensing.Key) {
	sort.Slice(keys, func(i, j int) bool {
		if !keys[i].CreatedAt.Equal(keys[j].CreatedAt) {
			return keys[i].CreatedAt.After(keys[j].CreatedAt)
		}
		return keys[i].ID > keys[j].ID
	})
}
