package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/pgstore"
	"github.com/licensekit/licensing/storetest"
)

// newCachedStore is newStore with the read cache started and listening.
func newCachedStore(t *testing.T) (*pgstore.Store, *pgxpool.Pool, string) {
	t.Helper()
	st, pool, dsn := newStore(t)
	if err := st.StartCache(pgstore.CacheConfig{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	waitFor(t, "the cache to listen", func() bool { return st.Err() == nil })
	return st, pool, dsn
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

// testKey is a stored key of org-1 with a lookup value of its own.
func testKey() licensing.Key {
	id := uuid.Must(uuid.NewV7()).String()
	return licensing.Key{ID: id, OrganizationID: "org-1", LookupValue: "lookup-" + id, Digest: "digest-" + id,
		MaskedKey: "aaaaaaaa...bbbbbbbb", Active: true, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
}

// TestCacheConformance: the store with its read cache keeps the Store
// contract (each call is one process, so its own writes are read back).
func TestCacheConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) licensing.Store {
		st, _, _ := newCachedStore(t)
		return st
	})
}

// TestCacheSeesOtherWriters: a key cached by one store is read again once
// another writer (plain SQL, as another server or an operator's psql
// session) changes what validation depends on: revocation, expiry,
// rotation. Without the triggers' notifications the cached record would
// be served for ever.
func TestCacheSeesOtherWriters(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		update string
		check  func(licensing.Key) bool
	}{
		{"revoke", `UPDATE licensing_keys SET active = false, revoked_at = now() WHERE id = $1`, func(k licensing.Key) bool { return !k.Active }},
		{"expiry", `UPDATE licensing_keys SET expires_at = '2030-01-01Z' WHERE id = $1`, func(k licensing.Key) bool { return !k.ExpiresAt.IsZero() }},
		{"rotation", `UPDATE licensing_keys SET rotated_to = 'x' WHERE id = $1`, func(k licensing.Key) bool { return k.RotatedTo == "x" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			st, pool, _ := newCachedStore(t)
			k := testKey()
			is.NoErr(st.CreateKey(ctx, k))
			got, err := st.KeyByLookup(ctx, k.LookupValue)
			is.NoErr(err)
			is.True(!tc.check(got)) // cached as it was
			_, err = pool.Exec(ctx, tc.update, uuid.MustParse(k.ID))
			is.NoErr(err)
			waitFor(t, "the change to reach the cache", func() bool {
				got, err := st.KeyByLookup(ctx, k.LookupValue)
				is.NoErr(err)
				return tc.check(got)
			})
		})
	}
}

// TestCacheServesFromMemory: a cached key is read without a statement,
// until a change of it is notified.
func TestCacheServesFromMemory(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dsn := postgres(t).NewSchema(t)
	st, _, tracer := countedStore(t, dsn)
	is.NoErr(st.Migrate(ctx))
	is.NoErr(st.StartCache(pgstore.CacheConfig{}))
	defer st.Close()
	waitFor(t, "the cache to listen", func() bool { return st.Err() == nil })
	k := testKey()
	is.NoErr(st.CreateKey(ctx, k))
	_, err := st.KeyByLookup(ctx, k.LookupValue)
	is.NoErr(err)
	before := tracer.n.Load()
	for range 100 {
		got, err := st.KeyByLookup(ctx, k.LookupValue)
		is.NoErr(err)
		is.Equal(got.ID, k.ID)
	}
	is.Equal(tracer.n.Load(), before) // no statement
}

// TestCacheBypassedWhileNotListening: while the listening connection is
// lost and cannot come back, Err says so and every read goes to
// PostgreSQL, so a key revoked meanwhile (its notification lost) is never
// served from the cache; once listening again the cache starts empty.
func TestCacheBypassedWhileNotListening(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, postgres(t).DSN())
	is.NoErr(err)
	defer admin.Close()
	db := fmt.Sprintf("bypass_%d", time.Now().UnixNano())
	_, err = admin.Exec(ctx, "CREATE DATABASE "+db)
	is.NoErr(err)
	dsn := strings.Replace(postgres(t).DSN(), "dbname=postgres", "dbname="+db, 1)
	defer func() {
		admin.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS true")
		admin.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)")
	}()

	pool, err := pgxpool.New(ctx, dsn)
	is.NoErr(err)
	defer pool.Close()
	st := pgstore.New(pool)
	is.NoErr(st.Migrate(ctx))
	is.NoErr(st.StartCache(pgstore.CacheConfig{}))
	defer st.Close()
	waitFor(t, "the cache to listen", func() bool { return st.Err() == nil })
	k := testKey()
	is.NoErr(st.CreateKey(ctx, k))
	got, err := st.KeyByLookup(ctx, k.LookupValue)
	is.NoErr(err)
	is.True(got.Active)                  // cached
	writer, err := pgx.Connect(ctx, dsn) // another server's connection, open before the database closes
	is.NoErr(err)
	defer writer.Close(ctx)

	// No new connection to the database from now on; the listener's is ended.
	_, err = admin.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS false")
	is.NoErr(err)
	var ended int
	is.NoErr(admin.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = $1 AND application_name = 'licensing-cache-listener') AS t`, db).Scan(&ended))
	is.Equal(ended, 1)
	waitFor(t, "Err to report the lost listener", func() bool { return st.Err() != nil })
	is.True(errors.Is(st.Err(), licensing.ErrStoreUnavailable))
	got, err = st.KeyByLookup(ctx, k.LookupValue) // read while not listening: not cached
	is.NoErr(err)
	is.True(got.Active)

	_, err = writer.Exec(ctx, `UPDATE licensing_keys SET active = false, revoked_at = now() WHERE id = $1`, uuid.MustParse(k.ID))
	is.NoErr(err) // notified to no one
	got, err = st.KeyByLookup(ctx, k.LookupValue)
	is.NoErr(err)        // read from PostgreSQL through the pool's open connection
	is.True(!got.Active) // not from the cache

	_, err = admin.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS true")
	is.NoErr(err)
	waitFor(t, "the cache to listen again", func() bool { return st.Err() == nil })
	got, err = st.KeyByLookup(ctx, k.LookupValue)
	is.NoErr(err)
	is.True(!got.Active)
}

// TestNotificationsOnlyForWhatValidationReads: recording validations (the
// batched last-validated writes) notifies nothing; a revocation notifies
// its key's id. Notifications arrive in commit order, so the first one a
// listener gets after both is the revocation's.
func TestNotificationsOnlyForWhatValidationReads(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, _, dsn := newStore(t)
	a, b := testKey(), testKey()
	is.NoErr(st.CreateKey(ctx, a))
	is.NoErr(st.CreateKey(ctx, b))
	conn, err := pgx.Connect(ctx, dsn)
	is.NoErr(err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "LISTEN licensing_keys")
	is.NoErr(err)

	now := time.Now().UTC()
	is.NoErr(st.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: a.ID, FirstAt: now, At: now,
		InstanceName: "n", InstanceURL: "https://a.example", Metrics: map[string]float64{"m": 1}, Violations: []string{"v"}}}))
	_, err = st.RevokeKey(ctx, b.ID, now)
	is.NoErr(err)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := conn.WaitForNotification(wctx)
	is.NoErr(err)
	is.Equal(n.Payload, b.ID) // not a.ID
}

// TestStartCacheTwice: a second StartCache is refused.
func TestStartCacheTwice(t *testing.T) {
	is := is.New(t)
	st, _, _ := newCachedStore(t)
	err := st.StartCache(pgstore.CacheConfig{})
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "already started"))
}

// TestCacheSeatsFromMemory: an instance that holds a seat is seated again
// without a statement once its key's instances are cached; a new instance
// still goes to PostgreSQL (and finds the limit there).
func TestCacheSeatsFromMemory(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dsn := postgres(t).NewSchema(t)
	st, pool, tracer := countedStore(t, dsn)
	is.NoErr(st.Migrate(ctx))
	is.NoErr(st.StartCache(pgstore.CacheConfig{}))
	defer st.Close()
	waitFor(t, "the cache to listen", func() bool { return st.Err() == nil })
	k := testKey()
	is.NoErr(st.CreateKey(ctx, k))
	now := time.Now().UTC()
	lease := time.Hour
	n, added, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: now}, 1, lease)
	is.NoErr(err)
	is.True(added)
	is.Equal(n, 1)
	// The seat's notification comes back to this store: wait until it has
	// (notifications arrive in commit order: a later change's shows it).
	sentinel := testKey()
	is.NoErr(st.CreateKey(ctx, sentinel))
	_, err = pool.Exec(ctx, `UPDATE licensing_keys SET active = false WHERE id = $1`, uuid.MustParse(sentinel.ID))
	is.NoErr(err)
	waitFor(t, "the notifications to arrive", func() bool {
		got, err := st.KeyByLookup(ctx, sentinel.LookupValue)
		is.NoErr(err)
		return !got.Active
	})
	_, _, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: now}, 1, lease) // reads the instances
	is.NoErr(err)
	before := tracer.n.Load()
	for i := range 100 {
		n, added, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: now.Add(time.Duration(i) * time.Second)}, 1, lease)
		is.NoErr(err)
		is.True(!added)
		is.Equal(n, 1)
	}
	is.Equal(tracer.n.Load(), before) // no statement
	_, _, err = st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "b", LastSeenAt: now}, 1, lease)
	is.True(errors.Is(err, licensing.ErrSeatLimit)) // decided by PostgreSQL
}

// TestCacheSeesSeatsFreedElsewhere: a seat freed by another writer (a
// DELETE of the instance's row, as another server's ReleaseInstance)
// reaches the cache: the instance, seen again, takes a new seat. The
// instances' time to live is made an hour, so only the notification can
// end the cached answer.
func TestCacheSeesSeatsFreedElsewhere(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	defer func(ttl time.Duration) { *pgstore.InstancesTTL = ttl }(*pgstore.InstancesTTL)
	*pgstore.InstancesTTL = time.Hour
	st, pool, _ := newCachedStore(t)
	k := testKey()
	is.NoErr(st.CreateKey(ctx, k))
	now := time.Now().UTC()
	for range 2 { // seated, then cached
		_, _, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: now}, 1, time.Hour)
		is.NoErr(err)
	}
	_, err := pool.Exec(ctx, `DELETE FROM key_instances WHERE key_id = $1 AND instance_id = 'a'`, uuid.MustParse(k.ID))
	is.NoErr(err)
	waitFor(t, "the freed seat to reach the cache", func() bool {
		_, added, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "a", LastSeenAt: now}, 1, time.Hour)
		is.NoErr(err)
		return added // a new seat: the cache no longer says it holds one
	})
}

// settle returns once every notification of the changes committed before
// it was called has reached st's cache: notifications arrive in commit
// order, so a later change of a cached sentinel key shows they have.
func settle(t *testing.T, st *pgstore.Store, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	sentinel := testKey()
	if err := st.CreateKey(ctx, sentinel); err != nil {
		t.Fatal(err)
	}
	if _, err := st.KeyByLookup(ctx, sentinel.LookupValue); err != nil { // cached
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE licensing_keys SET active = false WHERE id = $1`, uuid.MustParse(sentinel.ID)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the notifications to arrive", func() bool {
		got, err := st.KeyByLookup(ctx, sentinel.LookupValue)
		return err == nil && !got.Active
	})
}

// TestCacheSeesRowsReplacedElsewhere: writes through plain SQL that row
// triggers on one id do not describe reach the cache too: a TRUNCATE (no
// row trigger fires), a key's id changed and the key then revoked under
// its new id, an instance row moved to another key (its old key's seat
// freed). Before, each left the cached key or seat answered as it was.
func TestCacheSeesRowsReplacedElsewhere(t *testing.T) {
	ctx := context.Background()
	defer func(ttl time.Duration) { *pgstore.InstancesTTL = ttl }(*pgstore.InstancesTTL)
	*pgstore.InstancesTTL = time.Hour // only a notification ends a cached seat
	now := time.Now().UTC()
	seat := func(st *pgstore.Store, k licensing.Key, id string) (bool, error) {
		_, added, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: id, LastSeenAt: now}, 1, time.Hour)
		return added, err
	}

	t.Run("keys truncated", func(t *testing.T) {
		is := is.New(t)
		st, pool, _ := newCachedStore(t)
		k := testKey()
		is.NoErr(st.CreateKey(ctx, k))
		_, err := st.KeyByLookup(ctx, k.LookupValue) // cached
		is.NoErr(err)
		_, err = pool.Exec(ctx, `TRUNCATE licensing_keys CASCADE`)
		is.NoErr(err)
		settle(t, st, pool)
		_, err = st.KeyByLookup(ctx, k.LookupValue)
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // gone, not served from memory
	})

	t.Run("id changed, then revoked", func(t *testing.T) {
		is := is.New(t)
		st, pool, _ := newCachedStore(t)
		k := testKey()
		is.NoErr(st.CreateKey(ctx, k))
		_, err := st.KeyByLookup(ctx, k.LookupValue)
		is.NoErr(err)
		newID := uuid.New()
		_, err = pool.Exec(ctx, `UPDATE licensing_keys SET id = $2 WHERE id = $1`, uuid.MustParse(k.ID), newID)
		is.NoErr(err)
		_, err = pool.Exec(ctx, `UPDATE licensing_keys SET active = false, revoked_at = now() WHERE id = $1`, newID)
		is.NoErr(err)
		settle(t, st, pool)
		got, err := st.KeyByLookup(ctx, k.LookupValue)
		is.NoErr(err)
		is.True(!got.Active) // revoked
		is.Equal(got.ID, newID.String())
	})

	t.Run("instances truncated", func(t *testing.T) {
		is := is.New(t)
		st, pool, _ := newCachedStore(t)
		k := testKey()
		is.NoErr(st.CreateKey(ctx, k))
		_, err := seat(st, k, "a")
		is.NoErr(err)
		settle(t, st, pool)       // the seat's own notification is in
		_, err = seat(st, k, "a") // cached
		is.NoErr(err)
		_, err = pool.Exec(ctx, `TRUNCATE key_instances`)
		is.NoErr(err)
		settle(t, st, pool)
		added, err := seat(st, k, "a")
		is.NoErr(err)
		is.True(added) // a new seat: the cache no longer says it holds one
	})

	t.Run("instance moved to another key", func(t *testing.T) {
		is := is.New(t)
		st, pool, _ := newCachedStore(t)
		k, other := testKey(), testKey()
		is.NoErr(st.CreateKey(ctx, k))
		is.NoErr(st.CreateKey(ctx, other))
		_, err := seat(st, k, "a")
		is.NoErr(err)
		settle(t, st, pool)
		_, err = seat(st, k, "a") // cached
		is.NoErr(err)
		_, err = pool.Exec(ctx, `UPDATE key_instances SET key_id = $2 WHERE key_id = $1`, uuid.MustParse(k.ID), uuid.MustParse(other.ID))
		is.NoErr(err)
		settle(t, st, pool)
		added, err := seat(st, k, "a")
		is.NoErr(err)
		is.True(added) // k's seat was freed
	})
}

// TestCacheSeesManyChangesAtOnce: one statement revokes thousands of
// cached keys (more than the cache remembers of recent invalidations, for
// reads in flight) while readers keep reading them: once the
// notifications are in, no key is served as it was.
func TestCacheSeesManyChangesAtOnce(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, pool, _ := newCachedStore(t)
	keys := make([]licensing.Key, 3000)
	for i := range keys {
		keys[i] = testKey()
		keys[i].OrganizationID = "org-many"
	}
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"licensing_keys"},
		[]string{"id", "organization_id", "lookup_value", "digest", "masked_key", "active", "created_at"},
		pgx.CopyFromSlice(len(keys), func(i int) ([]any, error) {
			k := keys[i]
			return []any{uuid.MustParse(k.ID), k.OrganizationID, k.LookupValue, k.Digest, k.MaskedKey, true, k.CreatedAt}, nil
		}))
	is.NoErr(err)
	for _, k := range keys {
		_, err := st.KeyByLookup(ctx, k.LookupValue) // cached
		is.NoErr(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // readers refill the cache while the notifications arrive
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			st.KeyByLookup(ctx, keys[i%len(keys)].LookupValue)
		}
	}()
	_, err = pool.Exec(ctx, `UPDATE licensing_keys SET active = false, revoked_at = now() WHERE organization_id = 'org-many'`)
	is.NoErr(err)
	settle(t, st, pool)
	close(stop)
	<-done
	for _, k := range keys {
		got, err := st.KeyByLookup(ctx, k.LookupValue)
		is.NoErr(err)
		if got.Active {
			t.Fatalf("%s served as it was before its revocation", k.ID)
		}
	}
}
