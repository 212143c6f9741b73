package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/docsnippet"
	"github.com/licensekit/licensing/internal/harness"
	"github.com/licensekit/licensing/pgstore"
	"github.com/licensekit/licensing/pgstore/internal/pgtest"
	"github.com/licensekit/licensing/storetest"
)

// The throwaway PostgreSQL, started by the first test that needs it and
// stopped by TestMain.
var (
	pgOnce     sync.Once
	pg         *pgtest.Server
	pgMissing  string // why there is none: the binaries are not installed
	pgSetupErr error  // or they are, and the server did not start
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		pg.Stop()
	}
	harness.RemoveBuilds()
	os.Exit(code)
}

// postgres returns the throwaway server. Without the PostgreSQL binaries
// the calling test is skipped with the reason (failed instead when CI is
// set, since CI installs them); a server that does not start fails it.
func postgres(tb testing.TB) *pgtest.Server {
	tb.Helper()
	pgOnce.Do(func() {
		tb := &setupTB{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			pg = pgtest.Start(tb)
		}()
		<-done
		switch {
		case tb.skipped:
			pgMissing = tb.msg
		case tb.msg != "":
			pgSetupErr = errors.New(tb.msg)
		}
	})
	switch {
	case pgSetupErr != nil:
		tb.Fatal(pgSetupErr)
	case pgMissing != "" && os.Getenv("CI") != "":
		tb.Fatalf("%s (CI is set: .ci/run installs PostgreSQL, so this fails)", pgMissing)
	case pgMissing != "":
		tb.Skip(pgMissing)
	}
	return pg
}

// pool opens a pool on a fresh schema; the store is migrated.
func newStore(t testing.TB) (*pgstore.Store, *pgxpool.Pool, string) {
	t.Helper()
	dsn := postgres(t).NewSchema(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := pgstore.New(pool)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st, pool, dsn
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) licensing.Store {
		st, _, _ := newStore(t)
		return st
	})
}

func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	is := is.New(t)
	dsn := postgres(t).NewSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ { // eight servers starting at once
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(context.Background(), dsn)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- pgstore.New(pool).Migrate(context.Background())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		is.NoErr(err)
	}
	pool, err := pgxpool.New(context.Background(), dsn)
	is.NoErr(err)
	defer pool.Close()
	is.NoErr(pgstore.New(pool).Migrate(context.Background())) // and once more later
	var n int
	is.NoErr(pool.QueryRow(context.Background(), `SELECT count(*) FROM licensing_schema_migrations`).Scan(&n))
	names, err := filepath.Glob("migrations/*.sql")
	is.NoErr(err)
	is.Equal(n, len(names)) // each migration applied once
	var idx int
	is.NoErr(pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'licensing_keys'
		AND indexname IN ('licensing_keys_lookup_value', 'licensing_keys_org_created')`).Scan(&idx))
	is.Equal(idx, 2) // unique lookup index and listing index
}

// TestMigrateRefusesNewerSchema: a database migrated by a newer build
// (a schema version this build lacks) is refused, loudly, and left as it is.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	is := is.New(t)
	st, pool, _ := newStore(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO licensing_schema_migrations (version, name) VALUES (999, '999_future.sql')`)
	is.NoErr(err)
	err = st.Migrate(ctx)
	is.True(err != nil)                                                   // refused
	is.True(strings.Contains(err.Error(), "999_future.sql"))              // names the schema it found
	is.True(strings.Contains(err.Error(), "run a build at least as new")) // and what to do
	var n int
	is.NoErr(pool.QueryRow(ctx, `SELECT count(*) FROM licensing_schema_migrations`).Scan(&n))
	names, err := filepath.Glob("migrations/*.sql")
	is.NoErr(err)
	is.Equal(n, len(names)+1) // unchanged
}

// countingTracer counts the statements a pool sends.
type countingTracer struct{ n atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countedStore returns a store on a pool of its own to the database of
// dsn, the pool, and the tracer that counts the statements it sends.
func countedStore(t *testing.T, dsn string) (*pgstore.Store, *pgxpool.Pool, *countingTracer) {
	t.Helper()
	is := is.New(t)
	cfg, err := pgxpool.ParseConfig(dsn)
	is.NoErr(err)
	tracer := &countingTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	is.NoErr(err)
	t.Cleanup(pool.Close)
	return pgstore.New(pool), pool, tracer
}

func TestRecordValidationsIsOneStatement(t *testing.T) {
	is := is.New(t)
	st, _, dsn := newStore(t)
	ctx := context.Background()
	base := time.Date(2026, 2, 20, 10, 0, 0, 0, time.UTC)
	var recs []licensing.ValidationRecord
	for i := 0; i < 200; i++ {
		k := storetest.NewKey("org-1", base)
		is.NoErr(st.CreateKey(ctx, k))
		recs = append(recs, licensing.ValidationRecord{KeyID: k.ID, InstanceID: "https://x.example", FirstAt: base, At: base.Add(time.Minute),
			InstanceURL: "https://x.example", Metrics: map[string]float64{"userCount": float64(i)}, Violations: []string{}})
		_, _, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "https://x.example", LastSeenAt: base}, 0, time.Hour)
		is.NoErr(err)
	}
	counted, _, tracer := countedStore(t, dsn)
	is.NoErr(counted.RecordValidations(ctx, recs))
	is.Equal(tracer.n.Load(), int64(1)) // 200 validations, one statement, the instances' included
	got, err := counted.KeyByID(ctx, recs[199].KeyID)
	is.NoErr(err)
	is.Equal(got.LastMetrics["userCount"], 199.0)
	is.Equal(got.InstanceURL, "https://x.example")
	is.True(got.ActivatedAt.Equal(base))
	inst, err := counted.Instances(ctx, recs[199].KeyID, base.Add(time.Minute), time.Hour)
	is.NoErr(err)
	is.True(inst[0].LastSeenAt.Equal(base.Add(time.Minute)))
	is.Equal(inst[0].Metrics["userCount"], 199.0)
}

func TestDriverErrorsBecomeLibraryErrors(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	ctx := context.Background()
	k := storetest.NewKey("org-1", time.Now())
	is.NoErr(st.CreateKey(ctx, k))
	is.True(errors.Is(st.CreateKey(ctx, k), licensing.ErrDuplicateKey)) // unique violation on id
	_, err := st.KeyByID(ctx, "not-a-uuid")
	is.True(errors.Is(err, licensing.ErrKeyNotFound)) // no driver error for a malformed id
	_, err = st.RevokeKey(ctx, "nope", time.Now())
	is.True(errors.Is(err, licensing.ErrKeyNotFound))
	bad := storetest.NewKey("org-1", time.Now())
	bad.ID = "NOT-A-UUID"
	is.True(errors.Is(st.CreateKey(ctx, bad), licensing.ErrInvalidKeyID))
}

// TestTooManyConnectionsIsUnavailable: PostgreSQL refusing a new
// connection for lack of slots (53300, as when the servers' pools
// together exceed max_connections) is the store's unavailability, a 503
// that tells an instance to retry, not a 500. Before, only the classes 08
// and 57P were.
func TestTooManyConnectionsIsUnavailable(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st, admin, dsn := newStore(t)
	k := storetest.NewKey("org-1", time.Now())
	is.NoErr(st.CreateKey(ctx, k))
	role := fmt.Sprintf("limited_%d", time.Now().UnixNano())
	schema := dsn[strings.LastIndex(dsn, "search_path=")+len("search_path="):]
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN CONNECTION LIMIT 1`,
		`GRANT USAGE ON SCHEMA ` + schema + ` TO ` + role,
		`GRANT SELECT ON ALL TABLES IN SCHEMA ` + schema + ` TO ` + role,
	} {
		_, err := admin.Exec(ctx, q)
		is.NoErr(err)
	}
	t.Cleanup(func() { admin.Exec(ctx, `DROP OWNED BY `+role+`; DROP ROLE `+role) })
	cfg, err := pgxpool.ParseConfig(dsn)
	is.NoErr(err)
	cfg.ConnConfig.User = role
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	is.NoErr(err)
	defer pool.Close()
	held, err := pool.Acquire(ctx) // the role's one connection
	is.NoErr(err)
	defer held.Release()
	_, err = pgstore.New(pool).KeyByID(ctx, k.ID) // needs a second one
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "53300"))
	is.True(errors.Is(err, licensing.ErrStoreUnavailable))
}

func TestCheckPepper(t *testing.T) {
	is := is.New(t)
	st, pool, dsn := newStore(t)
	ctx := context.Background()
	fp := licensing.PepperFingerprint([]byte(strings.Repeat("a", 32)))
	other := licensing.PepperFingerprint([]byte(strings.Repeat("b", 32)))
	is.NoErr(st.CheckPepper(ctx, fp)) // the first use records it
	is.NoErr(st.CheckPepper(ctx, fp)) // and the same pepper is accepted again
	err := st.CheckPepper(ctx, other)
	is.True(errors.Is(err, licensing.ErrPepperMismatch)) // another is refused
	is.True(strings.Contains(err.Error(), "every issued key would stop validating"))
	is.True(st.CheckPepper(ctx, "") != nil)

	var value string
	is.NoErr(pool.QueryRow(ctx, `SELECT value FROM licensing_meta WHERE name = 'pepper_fingerprint'`).Scan(&value))
	is.Equal(value, fp) // the fingerprint, never the pepper

	// a second server on the same database, started later, sees the record
	pool2, err := pgxpool.New(ctx, dsn)
	is.NoErr(err)
	defer pool2.Close()
	is.True(errors.Is(pgstore.New(pool2).CheckPepper(ctx, other), licensing.ErrPepperMismatch))

	// first uses racing with different peppers: exactly one is recorded
	_, _, dsn3 := newStore(t)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := pgxpool.New(ctx, dsn3)
			if err != nil {
				return
			}
			defer p.Close()
			fp := licensing.PepperFingerprint([]byte(strings.Repeat(string(rune('a'+i)), 32)))
			if err := pgstore.New(p).CheckPepper(ctx, fp); err == nil {
				ok.Add(1)
			} else if !errors.Is(err, licensing.ErrPepperMismatch) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	is.Equal(ok.Load(), int64(1))
}

// TestNewChecksThePepper: licensing.New has the PostgreSQL store confirm its
// pepper with no option: over keys issued under another pepper it refuses
// to start.
func TestNewChecksThePepper(t *testing.T) {
	is := is.New(t)
	st, _, _ := newStore(t)
	ctx := context.Background()
	orgs := licensing.OrganizationsFunc(func(context.Context, string) (licensing.Organization, error) {
		return licensing.Organization{ID: "org-1", OwnerID: "user-1", Active: true}, nil
	})
	newService := func(pepper string) (*licensing.Service, error) {
		return licensing.New(licensing.Config{Store: st, Organizations: orgs, Pepper: []byte(strings.Repeat(pepper, 32)),
			Policy: licensing.Policy{Issuer: "licensing.test"}})
	}
	svc, err := newService("a")
	is.NoErr(err)
	created, err := svc.CreateKey(ctx, licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}, licensing.CreateKeyInput{})
	is.NoErr(err)
	is.NoErr(svc.Close(ctx))

	_, err = newService("b")
	is.True(errors.Is(err, licensing.ErrPepperMismatch))    // refused, not every key answered 401
	is.True(strings.Contains(err.Error(), "Config.Pepper")) // names the setting

	svc, err = newService("a")
	is.NoErr(err) // the original pepper still starts
	defer svc.Close(ctx)
	_, err = svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: created.LicenseKey})
	is.NoErr(err)
}

// openShared is the package doc's code, compiled here:
// TestPackageDocCompiles holds the doc to it, line for line, and runs it.
func openShared(ctx context.Context, myOrgs licensing.Organizations, pepper []byte) error {
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	st := pgstore.New(pool)
	if err := st.Migrate(ctx); err != nil { // idempotent; safe from many servers at once
		return err
	}
	svc, err := licensing.New(licensing.Config{Store: st, Organizations: myOrgs, Pepper: pepper,
		Policy: licensing.Policy{Issuer: "licensing.example.com"}})
	if err != nil {
		return err
	}
	defer pool.Close()
	return svc.Close(ctx)
}

// TestPackageDocCompiles: the Go code of the package doc is code that this
// package's tests compile (openShared), and it runs on PostgreSQL.
func TestPackageDocCompiles(t *testing.T) {
	docsnippet.Check(t, ".")
	t.Setenv("DATABASE_URL", postgres(t).NewSchema(t))
	orgs := licensing.OrganizationsFunc(func(context.Context, string) (licensing.Organization, error) {
		return licensing.Organization{}, licensing.ErrOrgNotFound
	})
	if err := openShared(context.Background(), orgs, []byte(strings.Repeat("p", 32))); err != nil {
		t.Fatal(err)
	}
}
