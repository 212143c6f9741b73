package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/pgstore"
	"github.com/licensekit/licensing/storetest"
)

const lease = 72 * time.Hour

// secondStore opens another pool on dsn: another server on the database.
func secondStore(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pgstore.New(pool)
}

// TestSeatInstance holds the sentences of licensing.Store.SeatInstance and
// Instances, step by step on one key.
func TestSeatInstance(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	k := storetest.NewKey("org-1", base)
	is.NoErr(st.CreateKey(ctx, k))
	at := func(d time.Duration) time.Time { return base.Add(d) }

	seated, added, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "A", URL: "https://a.example",
		LastSeenAt: at(0), Metrics: map[string]float64{"users": 1}}, 2, lease)
	is.NoErr(err)
	is.Equal(seated, 1) // a takes the first seat
	is.True(added)
	seated, added, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: at(time.Minute)}, 2, lease)
	is.NoErr(err)
	is.Equal(seated, 2) // b the second
	is.True(added)
	seated, added, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "c", LastSeenAt: at(2 * time.Minute)}, 2, lease)
	is.True(errors.Is(err, licensing.ErrSeatLimit)) // c finds every seat taken
	is.Equal(seated, 2)
	is.True(!added)
	// a seated instance keeps validating and is updated; FirstSeenAt stays
	seated, added, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "A2", LastSeenAt: at(3 * time.Minute),
		FirstSeenAt: at(time.Hour)}, 2, lease)
	is.NoErr(err)
	is.Equal(seated, 2)
	is.True(!added)
	// an older sighting arriving late moves nothing back
	_, _, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: at(time.Second)}, 2, lease)
	is.NoErr(err)

	list, err := st.Instances(ctx, k.ID, at(4*time.Minute), lease)
	is.NoErr(err)
	is.Equal(len(list), 2)
	is.Equal(list[0].ID, "a") // most recently seen first
	is.Equal(list[0].Name, "A2")
	is.Equal(list[0].URL, "https://a.example") // empty fields leave the value
	is.Equal(list[0].Metrics["users"], 1.0)
	is.True(list[0].FirstSeenAt.Equal(at(0)))
	is.True(list[0].LastSeenAt.Equal(at(3 * time.Minute)))
	is.Equal(list[0].LastSeenAt.Location(), time.UTC)
	is.Equal(list[1].ID, "b")
	is.Equal(list[1].Metrics, nil)
	list[0].Metrics["users"] = 99 // a copy
	again, err := st.Instances(ctx, k.ID, at(4*time.Minute), lease)
	is.NoErr(err)
	is.Equal(again[0].Metrics["users"], 1.0)

	// b's lease runs out (seen a minute after a, lease later): c takes its seat
	later := at(time.Minute + lease)
	seated, added, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "c", LastSeenAt: later}, 2, lease)
	is.NoErr(err)
	is.Equal(seated, 2) // a (seen 3 minutes in) and c
	is.True(added)
	list, err = st.Instances(ctx, k.ID, later, lease)
	is.NoErr(err)
	is.Equal(len(list), 2)
	is.Equal(list[0].ID, "c")
	is.Equal(list[1].ID, "a")
	seated, _, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: later}, 2, lease)
	is.True(errors.Is(err, licensing.ErrSeatLimit)) // b, forgotten, is new: refused
	is.Equal(seated, 2)

	// no limit
	seated, added, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: later}, 0, lease)
	is.NoErr(err)
	is.Equal(seated, 3)
	is.True(added)

	none, err := st.Instances(ctx, k.ID, later.Add(2*lease), lease)
	is.NoErr(err)
	is.True(none != nil) // empty, non-nil
	is.Equal(len(none), 0)

	other := storetest.NewKey("org-1", base)
	is.NoErr(st.CreateKey(ctx, other))
	empty, err := st.Instances(ctx, other.ID, later, lease)
	is.NoErr(err)
	is.True(empty != nil)
	is.Equal(len(empty), 0) // a key's instances are its own

	for _, id := range []string{storetest.NewKey("org-1", base).ID, "not-a-uuid"} {
		_, _, err = st.SeatInstance(ctx, id, licensing.Instance{ID: "a", LastSeenAt: later}, 0, lease)
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // a missing key
		_, err = st.Instances(ctx, id, later, lease)
		is.True(errors.Is(err, licensing.ErrKeyNotFound))
		is.True(errors.Is(st.ReleaseInstance(ctx, id, "a"), licensing.ErrKeyNotFound))
	}
}

// TestSeatInstanceKeepsTheMostRecentWithoutLimit: without a limit a key
// keeps licensing.MaxInstancesLimit instances, forgetting the one seen
// least recently.
func TestSeatInstanceKeepsTheMostRecentWithoutLimit(t *testing.T) {
	is := is.New(t)
	st, pool, _ := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	k := storetest.NewKey("org-1", base)
	is.NoErr(st.CreateKey(ctx, k))
	_, err := pool.Exec(ctx, `INSERT INTO key_instances (key_id, instance_id, first_seen_at, last_seen_at)
		SELECT $1, 'i' || n, $2::timestamptz + n * interval '1 second', $2::timestamptz + n * interval '1 second'
		FROM generate_series(1, $3) AS n`, k.ID, base, licensing.MaxInstancesLimit)
	is.NoErr(err)
	now := base.Add(time.Hour)
	seated, added, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "new", LastSeenAt: now}, 0, lease)
	is.NoErr(err)
	is.True(added)
	is.Equal(seated, licensing.MaxInstancesLimit) // still the bound
	list, err := st.Instances(ctx, k.ID, now, lease)
	is.NoErr(err)
	is.Equal(len(list), licensing.MaxInstancesLimit)
	is.Equal(list[0].ID, "new")
	is.Equal(list[len(list)-1].ID, "i2") // i1, seen least recently, was forgotten
}

func TestReleaseInstance(t *testing.T) {
	is := is.New(t)
	st, _, dsn := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	k := storetest.NewKey("org-1", now)
	is.NoErr(st.CreateKey(ctx, k))
	_, _, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "https://a.example", LastSeenAt: now}, 1, lease)
	is.NoErr(err)
	_, _, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: now}, 1, lease)
	is.True(errors.Is(err, licensing.ErrSeatLimit))

	other := secondStore(t, dsn) // another server
	is.NoErr(other.ReleaseInstance(ctx, k.ID, "https://a.example"))
	is.True(errors.Is(other.ReleaseInstance(ctx, k.ID, "https://a.example"), licensing.ErrInstanceNotFound)) // gone
	is.True(errors.Is(other.ReleaseInstance(ctx, k.ID, "never"), licensing.ErrInstanceNotFound))
	seated, added, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: now}, 1, lease)
	is.NoErr(err) // the seat is free at once, on every server
	is.True(added)
	is.Equal(seated, 1)
}

func TestSetMaxInstances(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

	bad := storetest.NewKey("org-1", now)
	bad.MaxInstances = licensing.MaxInstancesLimit + 1
	is.True(errors.Is(st.CreateKey(ctx, bad), licensing.ErrInvalidMaxInstances))
	bad.MaxInstances = -1
	is.True(errors.Is(st.CreateKey(ctx, bad), licensing.ErrInvalidMaxInstances))
	_, err := st.KeyByID(ctx, bad.ID)
	is.True(errors.Is(err, licensing.ErrKeyNotFound)) // nothing stored

	k := storetest.NewKey("org-1", now)
	k.MaxInstances = 3
	is.NoErr(st.CreateKey(ctx, k))
	got, err := st.KeyByLookup(ctx, k.LookupValue)
	is.NoErr(err)
	is.Equal(got.MaxInstances, 3) // stored at create
	got, err = st.SetMaxInstances(ctx, k.ID, licensing.MaxInstancesLimit)
	is.NoErr(err)
	is.Equal(got.MaxInstances, licensing.MaxInstancesLimit)
	for _, n := range []int{-1, licensing.MaxInstancesLimit + 1} {
		_, err = st.SetMaxInstances(ctx, k.ID, n)
		is.True(errors.Is(err, licensing.ErrInvalidMaxInstances))
	}
	got, err = st.SetMaxInstances(ctx, k.ID, 2)
	is.NoErr(err)
	is.Equal(got.MaxInstances, 2)
	list, err := st.ListKeys(ctx, "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(list[0].MaxInstances, 2)

	next := storetest.NewKey("org-1", now)
	next.MaxInstances = 7 // whatever the new key carried
	_, err = st.RotateKey(ctx, k.ID, next, time.Time{})
	is.NoErr(err)
	got, err = st.KeyByID(ctx, next.ID)
	is.NoErr(err)
	is.Equal(got.MaxInstances, 2) // the rotation copies the old key's limit

	_, err = st.RevokeKey(ctx, next.ID, now)
	is.NoErr(err)
	_, err = st.SetMaxInstances(ctx, next.ID, 5)
	is.True(errors.Is(err, licensing.ErrKeyRevoked))
	got, err = st.KeyByID(ctx, next.ID)
	is.NoErr(err)
	is.Equal(got.MaxInstances, 2) // unchanged
	_, err = st.SetMaxInstances(ctx, storetest.NewKey("org-1", now).ID, 5)
	is.True(errors.Is(err, licensing.ErrKeyNotFound))
	_, err = st.SetMaxInstances(ctx, "nope", 5)
	is.True(errors.Is(err, licensing.ErrKeyNotFound))
}

// TestRecordValidationsUpdatesInstances: a record with an InstanceID moves
// that instance's LastSeenAt and sets its fields, in the batch's one
// statement; an instance the key no longer has is not brought back.
func TestRecordValidationsUpdatesInstances(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	k := storetest.NewKey("org-1", now)
	is.NoErr(st.CreateKey(ctx, k))
	_, _, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", Name: "A", LastSeenAt: now}, 0, lease)
	is.NoErr(err)
	_, _, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: now}, 0, lease)
	is.NoErr(err)
	is.NoErr(st.ReleaseInstance(ctx, k.ID, "b"))

	is.NoErr(st.RecordValidations(ctx, []licensing.ValidationRecord{
		{KeyID: k.ID, InstanceID: "a", FirstAt: now, At: now.Add(time.Hour), InstanceURL: "https://a.example",
			Metrics: map[string]float64{"users": 4}},
		{KeyID: k.ID, InstanceID: "b", At: now.Add(2 * time.Hour), InstanceName: "B"}, // same key: a second round
	}))
	list, err := st.Instances(ctx, k.ID, now.Add(2*time.Hour), lease)
	is.NoErr(err)
	is.Equal(len(list), 1) // b was released and stays so
	is.Equal(list[0].ID, "a")
	is.True(list[0].LastSeenAt.Equal(now.Add(time.Hour)))
	is.Equal(list[0].Name, "A") // kept
	is.Equal(list[0].URL, "https://a.example")
	is.Equal(list[0].Metrics["users"], 4.0)
	got, err := st.KeyByID(ctx, k.ID)
	is.NoErr(err)
	is.True(got.LastValidatedAt.Equal(now.Add(2 * time.Hour))) // the key's record as before
	is.Equal(got.InstanceName, "B")
}

// TestSeatRaceTwoServers: two stores on two pools (two servers), N
// goroutines on each racing, round after round, for the last seat of a key
// with new instances: exactly one wins each round, and the key holds
// exactly its limit.
func TestSeatRaceTwoServers(t *testing.T) {
	is := is.New(t)
	a, _, dsn := newStore(t)
	b := secondStore(t, dsn)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const rounds, perServer, limit = 40, 6, 3
	for round := 0; round < rounds; round++ {
		k := storetest.NewKey("org-1", now)
		is.NoErr(a.CreateKey(ctx, k))
		for i := 0; i < limit-1; i++ { // every seat but the last taken
			_, _, err := b.SeatInstance(ctx, k.ID, licensing.Instance{ID: fmt.Sprint("held-", i), LastSeenAt: now}, limit, lease)
			is.NoErr(err)
		}
		var wins, refused atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for s, st := range []*pgstore.Store{a, b} {
			for g := 0; g < perServer; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					inst := licensing.Instance{ID: fmt.Sprintf("new-%d-%d", s, g), LastSeenAt: now.Add(time.Second)}
					seated, added, err := st.SeatInstance(ctx, k.ID, inst, limit, lease)
					switch {
					case err == nil && added && seated == limit:
						wins.Add(1)
					case errors.Is(err, licensing.ErrSeatLimit) && seated == limit:
						refused.Add(1)
					default:
						t.Errorf("round %d: seated %d, added %v, err %v", round, seated, added, err)
					}
				}()
			}
		}
		close(start)
		wg.Wait()
		is.Equal(wins.Load(), int64(1))                // exactly one new instance took the last seat
		is.Equal(refused.Load(), int64(2*perServer-1)) // every other one was refused
		list, err := a.Instances(ctx, k.ID, now.Add(time.Second), lease)
		is.NoErr(err)
		is.Equal(len(list), limit)
	}
}

// TestMigrationToInstances: a database at migration 003 with a key
// migrates forward; the key has no limit of its own and takes seats.
func TestMigrationToInstances(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dsn := postgres(t).NewSchema(t)
	pool, err := pgxpool.New(ctx, dsn)
	is.NoErr(err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `CREATE TABLE licensing_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	is.NoErr(err)
	for i, name := range []string{"001_keys.sql", "002_meta.sql", "003_key_lifetime.sql"} {
		sql, err := os.ReadFile("migrations/" + name)
		is.NoErr(err)
		_, err = pool.Exec(ctx, string(sql))
		is.NoErr(err)
		_, err = pool.Exec(ctx, `INSERT INTO licensing_schema_migrations (version, name) VALUES ($1, $2)`, i+1, name)
		is.NoErr(err)
	}
	old := storetest.NewKey("org-1", time.Date(2026, 2, 20, 10, 0, 0, 0, time.UTC))
	// the INSERT of the release before instances, column for column
	_, err = pool.Exec(ctx, `INSERT INTO licensing_keys (id, organization_id, lookup_value, digest, masked_key, instance_name,
		instance_url, active, created_at, activated_at, last_validated_at, revoked_at, last_metrics, last_violations,
		expires_at, rotated_to, rotated_from)
		VALUES ($1, $2, $3, $4, $5, $6, '', true, $7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
		old.ID, old.OrganizationID, old.LookupValue, old.Digest, old.MaskedKey, old.InstanceName, old.CreatedAt)
	is.NoErr(err)

	st := pgstore.New(pool)
	is.NoErr(st.Migrate(ctx))
	got, err := st.KeyByID(ctx, old.ID)
	is.NoErr(err)
	is.Equal(got.MaxInstances, 0) // no limit of its own
	seated, added, err := st.SeatInstance(ctx, old.ID, licensing.Instance{ID: "a", LastSeenAt: old.CreatedAt}, 0, lease)
	is.NoErr(err)
	is.True(added)
	is.Equal(seated, 1)
}

// TestRecordValidationsFromTwoServers: two servers write batches naming the
// same keys and instances, in opposite orders, at once: no batch fails (a
// deadlock between them would fail one).
func TestRecordValidationsFromTwoServers(t *testing.T) {
	is := is.New(t)
	a, _, dsn := newStore(t)
	b := secondStore(t, dsn)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var recs []licensing.ValidationRecord
	for i := 0; i < 300; i++ {
		k := storetest.NewKey("org-1", now)
		is.NoErr(a.CreateKey(ctx, k))
		_, _, err := a.SeatInstance(ctx, k.ID, licensing.Instance{ID: "i", LastSeenAt: now}, 0, lease)
		is.NoErr(err)
		recs = append(recs, licensing.ValidationRecord{KeyID: k.ID, InstanceID: "i", At: now, Metrics: map[string]float64{"n": 1}})
	}
	reversed := slices.Clone(recs)
	slices.Reverse(reversed)
	for round := 0; round < 30; round++ {
		var wg sync.WaitGroup
		for _, w := range []struct {
			st   *pgstore.Store
			recs []licensing.ValidationRecord
		}{{a, recs}, {b, reversed}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := w.st.RecordValidations(ctx, w.recs); err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		wg.Wait()
	}
}

// TestRecordValidationsBatchesOfAnySize: two servers write batches of
// records of different sizes at once, over keys whose rows are not in id
// order on disk (created in random order): a large batch and small ones.
// PostgreSQL picks another plan for each size (a hash join scans the
// table in its physical order, a nested loop follows the sorted ids), so
// sorting the records alone did not fix the order in which rows are
// locked: the batches deadlocked (40P01) and one failed.
func TestRecordValidationsBatchesOfAnySize(t *testing.T) {
	is := is.New(t)
	a, _, dsn := newStore(t)
	b := secondStore(t, dsn)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	keys := make([]licensing.Key, 1000)
	for i := range keys {
		keys[i] = storetest.NewKey("org-1", now)
	}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	for i, k := range keys {
		is.NoErr(a.CreateKey(ctx, k))
		if i%2 == 0 {
			_, _, err := a.SeatInstance(ctx, k.ID, licensing.Instance{ID: "i", LastSeenAt: now}, 0, lease)
			is.NoErr(err)
		}
	}
	records := func(ks []licensing.Key, at time.Time) []licensing.ValidationRecord {
		recs := make([]licensing.ValidationRecord, len(ks))
		for i, k := range ks {
			recs[i] = licensing.ValidationRecord{KeyID: k.ID, InstanceID: "i", At: at, Metrics: map[string]float64{"n": 1}}
		}
		return recs
	}
	for round := 0; round < 10; round++ {
		at := now.Add(time.Duration(round) * time.Minute)
		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				if err := a.RecordValidations(ctx, records(keys, at.Add(time.Duration(i)*time.Second))); err != nil {
					t.Errorf("round %d: a batch of %d: %v", round, len(keys), err)
				}
			}
		}()
		for g := 0; g < 2; g++ {
			go func() {
				defer wg.Done()
				for i := 0; i < 40; i++ {
					from := rand.N(len(keys) - 50)
					if err := b.RecordValidations(ctx, records(keys[from:from+50], at.Add(time.Duration(i)*time.Second))); err != nil {
						t.Errorf("round %d: a batch of 50: %v", round, err)
					}
				}
			}()
		}
		wg.Wait()
	}
}

// TestSeatInstanceKilledConnection terminates the backend of a seat
// taker at each statement of its work (the one-row refresh, then BEGIN,
// the key's row lock, the forgetting, the count, the update, the insert,
// the commit), before the statement is sent and after its answer: the
// caller gets an error that is the store's unavailability (a 503, never a
// 500 or a crash) unless the commit answered, the seat is taken only if it
// committed, and no lock is left behind: the next call seats the
// instance, and another instance finds the one seat taken.
func TestSeatInstanceKilledConnection(t *testing.T) {
	ctx := context.Background()
	dsn := postgres(t).NewSchema(t)
	admin, err := pgxpool.New(ctx, postgres(t).DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	checker := secondStore(t, dsn) // reads the outcome on connections nobody terminates
	if err := checker.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	k := &killer{admin: admin}
	cfg.ConnConfig.Tracer = k
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := pgstore.New(pool)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

	const statements = 8
	for at := int64(1); at <= statements; at++ {
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("statement %d, %s", at, map[bool]string{false: "before it is sent", true: "after its answer"}[after]), func(t *testing.T) {
				is := is.New(t)
				key := storetest.NewKey("org-kill", now)
				is.NoErr(checker.CreateKey(ctx, key))
				_, _, err := checker.SeatInstance(ctx, key.ID, licensing.Instance{ID: "old", LastSeenAt: now.Add(-2 * lease)}, 1, lease)
				is.NoErr(err) // a row past the lease, for the forgetting to delete
				k.arm(at, after)
				_, _, seatErr := st.SeatInstance(ctx, key.ID, licensing.Instance{ID: "new", LastSeenAt: now}, 1, lease)
				k.at.Store(0)
				is.True(k.fired.Load()) // the connection was terminated
				list, err := checker.Instances(ctx, key.ID, now, lease)
				is.NoErr(err)
				committed := at == statements && after
				is.Equal(len(list) == 1, committed) // seated only once the commit answered
				if !committed {
					is.True(errors.Is(seatErr, licensing.ErrStoreUnavailable)) // a 503
					// (after the commit's answer the killed connection went
					// back to the pool, whose next use fails: not retried here)
					seated, _, err := st.SeatInstance(ctx, key.ID, licensing.Instance{ID: "new", LastSeenAt: now}, 1, lease)
					is.NoErr(err) // no lock or half state left behind
					is.Equal(seated, 1)
				}
				_, _, err = checker.SeatInstance(ctx, key.ID, licensing.Instance{ID: "other", LastSeenAt: now}, 1, lease)
				is.True(errors.Is(err, licensing.ErrSeatLimit)) // the one seat is taken once
			})
		}
	}
}

// TestSeatsAndRecordsFromTwoServers: one server seats instances (new ones,
// and ones whose lease ran out, which take the key's row lock) while the
// other writes batches of records naming the same keys and instances:
// neither fails (a deadlock between a seat taker and a batch would fail
// one).
func TestSeatsAndRecordsFromTwoServers(t *testing.T) {
	is := is.New(t)
	a, _, dsn := newStore(t)
	b := secondStore(t, dsn)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	const keys, rounds = 100, 40
	var ids []string
	for i := 0; i < keys; i++ {
		k := storetest.NewKey("org-1", now)
		is.NoErr(a.CreateKey(ctx, k))
		ids = append(ids, k.ID)
	}
	for round := 0; round < rounds; round++ {
		at := now.Add(time.Duration(round) * 2 * lease) // every instance's lease ran out since the last round
		for _, id := range ids {
			_, _, err := a.SeatInstance(ctx, id, licensing.Instance{ID: "old", LastSeenAt: at.Add(-lease)}, 0, lease)
			is.NoErr(err)
		}
		var recs []licensing.ValidationRecord
		for _, id := range ids {
			recs = append(recs, licensing.ValidationRecord{KeyID: id, InstanceID: "old", At: at, InstanceName: "n"})
		}
		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			if err := b.RecordValidations(ctx, recs); err != nil {
				t.Errorf("round %d: records: %v", round, err)
			}
		}()
		for g := 0; g < 2; g++ {
			go func() {
				defer wg.Done()
				for i := range ids {
					id := ids[(i*7+g*50)%len(ids)]
					// "old" was seen a lease ago: it is past the lease, so it takes the key's row lock
					if _, _, err := a.SeatInstance(ctx, id, licensing.Instance{ID: "old", LastSeenAt: at.Add(time.Second)}, 1, lease); err != nil {
						t.Errorf("round %d: seat: %v", round, err)
					}
				}
			}()
		}
		wg.Wait()
	}
}
