package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/pgstore"
	"github.com/licensekit/licensing/storetest"
)

// TestMigrationToKeyLifetime: a database with the schema of the release
// before key lifetimes (migrations 001 and 002, recorded as applied) and a
// key inserted as that release did migrates forward; the key never
// expires, was never rotated, and can be rotated and renewed.
func TestMigrationToKeyLifetime(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dsn := postgres(t).NewSchema(t)
	pool, err := pgxpool.New(ctx, dsn)
	is.NoErr(err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `CREATE TABLE licensing_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	is.NoErr(err)
	for i, name := range []string{"001_keys.sql", "002_meta.sql"} {
		sql, err := os.ReadFile("migrations/" + name)
		is.NoErr(err)
		_, err = pool.Exec(ctx, string(sql))
		is.NoErr(err)
		_, err = pool.Exec(ctx, `INSERT INTO licensing_schema_migrations (version, name) VALUES ($1, $2)`, i+1, name)
		is.NoErr(err)
	}
	old := storetest.NewKey("org-1", time.Date(2026, 2, 20, 10, 0, 0, 0, time.UTC))
	// the INSERT of the release before lifetimes, column for column
	_, err = pool.Exec(ctx, `INSERT INTO licensing_keys (id, organization_id, lookup_value, digest, masked_key, instance_name,
		instance_url, active, created_at, activated_at, last_validated_at, revoked_at, last_metrics, last_violations)
		VALUES ($1, $2, $3, $4, $5, $6, 'https://a.example', true, $7, NULL, NULL, NULL, '{"userCount": 3}', NULL)`,
		old.ID, old.OrganizationID, old.LookupValue, old.Digest, old.MaskedKey, old.InstanceName, old.CreatedAt)
	is.NoErr(err)

	st := pgstore.New(pool)
	is.NoErr(st.Migrate(ctx))
	var applied bool
	is.NoErr(pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM licensing_schema_migrations WHERE version = 3)`).Scan(&applied))
	is.True(applied) // the lifetime migration was applied
	got, err := st.KeyByID(ctx, old.ID)
	is.NoErr(err)
	is.True(got.ExpiresAt.IsZero()) // an existing key never expires
	is.Equal(got.RotatedTo, "")
	is.Equal(got.RotatedFrom, "")
	is.Equal(got.LastMetrics["userCount"], 3.0) // and keeps what it had
	is.True(got.Active)

	next := storetest.NewKey("org-1", old.CreatedAt)
	ends := old.CreatedAt.Add(7 * 24 * time.Hour)
	rotated, err := st.RotateKey(ctx, old.ID, next, ends)
	is.NoErr(err)
	is.True(rotated.ExpiresAt.Equal(ends)) // a key that never expired ends with the overlap
	n2, err := st.KeyByLookup(ctx, next.LookupValue)
	is.NoErr(err)
	is.Equal(n2.RotatedFrom, old.ID)
	is.Equal(n2.InstanceURL, "https://a.example") // taken over
	is.True(n2.ExpiresAt.IsZero())                // and so is "never expires"
	renewed, err := st.SetKeyExpiry(ctx, n2.ID, ends.Add(time.Hour))
	is.NoErr(err)
	is.True(renewed.ExpiresAt.Equal(ends.Add(time.Hour)))
}

// killer is a pgx tracer that terminates the backend of the connection
// running the armed statement of a RotateKey call, before the statement is
// sent or once its answer came back, and waits until the backend is gone.
type killer struct {
	admin *pgxpool.Pool
	at    atomic.Int64 // statement number (1 is BEGIN) at which to kill; 0: none
	after bool         // kill once the statement ended rather than before it is sent
	n     atomic.Int64 // statements seen since armed
	fired atomic.Bool
}

func (k *killer) arm(at int64, after bool) {
	k.n.Store(0)
	k.fired.Store(false)
	k.after = after
	k.at.Store(at)
}

func (k *killer) maybeKill(ctx context.Context, conn *pgx.Conn, end bool) {
	at := k.at.Load()
	if at == 0 {
		return
	}
	n := k.n.Load()
	if !end {
		n = k.n.Add(1) // statements are counted as they start
	}
	if end != k.after || n != at || !k.fired.CompareAndSwap(false, true) {
		return
	}
	var ok bool
	// the timeout makes pg_terminate_backend wait until the backend exited
	if err := k.admin.QueryRow(context.Background(), `SELECT pg_terminate_backend($1, 10000)`, conn.PgConn().PID()).Scan(&ok); err != nil || !ok {
		panic(fmt.Sprintf("pg_terminate_backend: %v %v", ok, err))
	}
}

func (k *killer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	k.maybeKill(ctx, conn, false)
	return ctx
}

func (k *killer) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, _ pgx.TraceQueryEndData) {
	k.maybeKill(ctx, conn, true)
}

// rotationState checks that the rotation of old to next is whole or absent
// in st, and reports which.
func rotationState(t *testing.T, st *pgstore.Store, old, next licensing.Key, ends time.Time) (whole bool) {
	t.Helper()
	ctx := context.Background()
	o, err := st.KeyByID(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	n, err := st.KeyByID(ctx, next.ID)
	switch {
	case errors.Is(err, licensing.ErrKeyNotFound):
		if !storetest.Equal(o, old) {
			t.Fatalf("no new key, but the old key changed: %+v, was %+v", o, old)
		}
		return false
	case err != nil:
		t.Fatal(err)
	}
	if o.RotatedTo != next.ID || !o.ExpiresAt.Equal(ends) || n.RotatedFrom != old.ID ||
		n.InstanceName != old.InstanceName || !n.ExpiresAt.Equal(old.ExpiresAt) {
		t.Fatalf("half a rotation: old %+v, new %+v", o, n)
	}
	return true
}

// TestRotationKilledConnection terminates the backend connection of a
// RotateKey call (pg_terminate_backend) before and after each statement of
// its transaction: before the commit's answer the rotation is absent (the
// old key as it was, no new key, the row lock released: the rotation can
// be done again), after it whole. Then a second part terminates the
// backends at random moments while rotations run in a loop, and checks
// that each rotation is whole or absent.
func TestRotationKilledConnection(t *testing.T) {
	ctx := context.Background()
	dsn := postgres(t).NewSchema(t)
	admin, err := pgxpool.New(ctx, postgres(t).DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	ends := base.Add(24 * time.Hour)
	plain, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	checker := pgstore.New(plain) // reads the outcome on connections nobody terminates
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

	const statements = 5 // BEGIN, SELECT ... FOR UPDATE, INSERT, UPDATE, COMMIT
	for at := int64(1); at <= statements; at++ {
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("statement %d, %s", at, map[bool]string{false: "before it is sent", true: "after its answer"}[after]), func(t *testing.T) {
				is := is.New(t)
				old := storetest.NewKey("org-kill", base)
				old.ExpiresAt = base.Add(48 * time.Hour)
				is.NoErr(checker.CreateKey(ctx, old))
				next := storetest.NewKey("org-kill", base)
				k.arm(at, after)
				_, rotErr := st.RotateKey(ctx, old.ID, next, ends)
				k.at.Store(0)
				is.True(k.fired.Load()) // the connection was terminated
				whole := rotationState(t, checker, old, next, ends)
				committed := at == statements && after
				is.Equal(whole, committed) // whole only once the commit answered
				if !committed {
					is.True(rotErr != nil) // and the caller was told
					_, err := st.RotateKey(ctx, old.ID, next, ends)
					is.NoErr(err) // no lock or half state left behind: the rotation can be done again
					is.True(rotationState(t, checker, old, next, ends))
				}
			})
		}
	}

	t.Run("terminated at random moments", func(t *testing.T) {
		is := is.New(t)
		rcfg, err := pgxpool.ParseConfig(dsn)
		is.NoErr(err)
		rcfg.ConnConfig.RuntimeParams["application_name"] = "licensing-rotation-under-kill"
		rpool, err := pgxpool.NewWithConfig(ctx, rcfg)
		is.NoErr(err)
		defer rpool.Close()
		victim := pgstore.New(rpool) // its backends are terminated; st only checks
		var keys []licensing.Key
		for i := 0; i < 60; i++ {
			old := storetest.NewKey("org-random", base)
			old.ExpiresAt = base.Add(48 * time.Hour)
			is.NoErr(checker.CreateKey(ctx, old))
			keys = append(keys, old)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		var kills atomic.Int64
		// A rotation that failed 20 times is tried in quiet: on a busy
		// machine a rotation can take longer than the killer's interval,
		// and the test is of what each kill leaves, not of luck.
		var quiet atomic.Bool
		go func() { // terminates the victim's working backends at random moments
			defer close(done)
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(rand.IntN(8000)) * time.Microsecond):
				}
				if quiet.Load() {
					continue
				}
				var n int
				// Only backends at work: killing the pool's idle ones too
				// left every try a dead connection on a busy machine.
				if err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
					WHERE application_name = 'licensing-rotation-under-kill' AND state <> 'idle'`).Scan(&n); err == nil {
					kills.Add(int64(n))
				}
			}
		}()
		failed, lostAnswers := 0, 0
		for _, old := range keys {
			next := storetest.NewKey("org-random", base)
			for try := 0; ; try++ {
				if try == 100 {
					t.Fatalf("rotation of %s: no success in %d tries", old.ID, try)
				}
				quiet.Store(try >= 20)
				_, err := victim.RotateKey(ctx, old.ID, next, ends)
				if err == nil {
					break
				}
				failed++
				whole := rotationState(t, checker, old, next, ends) // whole or absent after every failure
				if errors.Is(err, licensing.ErrKeyRotated) || whole {
					lostAnswers++ // committed, and the kill took the answer
					break
				}
			}
			is.True(rotationState(t, checker, old, next, ends)) // done in the end
			quiet.Store(false)
		}
		close(stop)
		<-done
		t.Logf("%d backends terminated; %d rotations, %d calls failed (%d of them after the commit), every state whole or absent",
			kills.Load(), len(keys), failed, lostAnswers)
		is.True(kills.Load() > 0) // connections were terminated
		is.True(failed > 0)       // inside rotations
	})
}
