// Package pgstore is a licensing.Store on PostgreSQL, through pgx. Any number
// of license servers sharing one database agree on every create, revoke and
// seat: without the read cache every read is one indexed query; with it
// (StartCache), validation reads memory, kept fresh through LISTEN/NOTIFY
// and bypassed while not listening.
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	if err != nil {
//		return err
//	}
//	st := pgstore.New(pool)
//	if err := st.Migrate(ctx); err != nil { // idempotent; safe from many servers at once
//		return err
//	}
//	svc, err := licensing.New(licensing.Config{Store: st, Organizations: myOrgs, Pepper: pepper,
//		Policy: licensing.Policy{Issuer: "licensing.example.com"}})
//
// The schema is in migrations/*.sql (embedded) and described in README.md.
package pgstore

import (
	"cmp"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/licensekit/licensing"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL licensing.Store. It is safe for concurrent use.
type Store struct {
	pool  *pgxpool.Pool
	cache atomic.Pointer[cache] // nil until StartCache
}

var _ licensing.Store = (*Store)(nil)

// New returns a Store on pool, which the caller owns and closes. Call
// Migrate before first use.
func New(pool *pgxpool.Pool) *Store {
	if pool == nil {
		panic("pgstore: New needs a pool")
	}
	return &Store{pool: pool}
}

// migrationLock is the advisory lock key Migrate holds ("licensin" in ASCII).
const migrationLock = 0x6c6963656e73696e

// Migrate applies the embedded migrations that the database lacks, in order,
// in one transaction under an advisory lock, so servers starting at once do
// not race. It is idempotent. A database migrated by a newer build (a
// schema version this build does not have) is refused with an error that
// says so, and left unchanged.
func (s *Store) Migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS licensing_schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	versions := make([]int, len(names))
	for i, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("pgstore: migration %s: name must start with a number", base)
		}
		versions[i] = v
	}
	// A schema this build does not know was made by a newer one, whose
	// writes (columns, tables) this build would not keep up: refuse.
	var newer int
	var newerName string
	err = tx.QueryRow(ctx, `SELECT version, name FROM licensing_schema_migrations WHERE version > $1
		ORDER BY version DESC LIMIT 1`, versions[len(versions)-1]).Scan(&newer, &newerName)
	if err == nil {
		return fmt.Errorf("pgstore: migrate: the database has schema version %d (%s), newer than this build knows (%d): "+
			"run a build at least as new as the one that migrated it", newer, newerName, versions[len(versions)-1])
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	for i, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version := versions[i]
		var applied bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM licensing_schema_migrations WHERE version = $1)`, version).Scan(&applied); err != nil {
			return fmt.Errorf("pgstore: migrate: %w", err)
		}
		if applied {
			continue
		}
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return fmt.Errorf("pgstore: migration %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO licensing_schema_migrations (version, name) VALUES ($1, $2)`, version, base); err != nil {
			return fmt.Errorf("pgstore: migrate: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

var _ interface {
	CheckPepper(context.Context, string) error
} = (*Store)(nil) // asked by licensing.New

// CheckPepper makes the database remember the pepper it is used with: the
// first call records fingerprint (licensing.PepperFingerprint of the
// pepper; never the pepper) in licensing_meta, later calls compare with it.
// Another fingerprint gives an error wrapping licensing.ErrPepperMismatch:
// under that pepper every issued key would stop validating. Concurrent
// first calls with different fingerprints record exactly one of them.
func (s *Store) CheckPepper(ctx context.Context, fingerprint string) error {
	if fingerprint == "" {
		return errors.New("pgstore: check pepper: empty fingerprint")
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO licensing_meta (name, value) VALUES ('pepper_fingerprint', $1)
		ON CONFLICT (name) DO NOTHING`, fingerprint); err != nil {
		return storeErr("check pepper", err)
	}
	var recorded string // a new statement: it sees a row a concurrent first call committed
	if err := s.pool.QueryRow(ctx, `SELECT value FROM licensing_meta WHERE name = 'pepper_fingerprint'`).Scan(&recorded); err != nil {
		return storeErr("check pepper", err)
	}
	if subtle.ConstantTimeCompare([]byte(recorded), []byte(fingerprint)) != 1 {
		return fmt.Errorf("pgstore: %w", licensing.ErrPepperMismatch)
	}
	return nil
}

// SigningFingerprint makes the database remember the signing keys of the
// servers that share it: when it records none, or replace is true (the
// server was started with -rotate-signing-keys), it records fingerprint (a
// server's names of its signing keys: their key ids, never the keys); it
// returns the fingerprint recorded, which the caller compares with its own.
// A server whose signing keys differ from the other servers' would sign
// tokens and answers that clients fetching the other servers' public keys
// cannot verify. Concurrent first calls record exactly one fingerprint.
func (s *Store) SigningFingerprint(ctx context.Context, fingerprint string, replace bool) (string, error) {
	if fingerprint == "" {
		return "", errors.New("pgstore: signing fingerprint: empty fingerprint")
	}
	q := `INSERT INTO licensing_meta (name, value) VALUES ('signing_fingerprint', $1) ON CONFLICT (name) DO NOTHING`
	if replace {
		q = `INSERT INTO licensing_meta (name, value) VALUES ('signing_fingerprint', $1)
			ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, created_at = now()`
	}
	if _, err := s.pool.Exec(ctx, q, fingerprint); err != nil {
		return "", storeErr("signing fingerprint", err)
	}
	var recorded string
	if err := s.pool.QueryRow(ctx, `SELECT value FROM licensing_meta WHERE name = 'signing_fingerprint'`).Scan(&recorded); err != nil {
		return "", storeErr("signing fingerprint", err)
	}
	return recorded, nil
}

const columns = `id, organization_id, lookup_value, digest, masked_key, instance_name, instance_url, active,
	created_at, activated_at, last_validated_at, revoked_at, last_metrics, last_violations,
	expires_at, rotated_to, rotated_from, max_instances`

func scanKey(row pgx.Row) (licensing.Key, error) {
	var k licensing.Key
	var id uuid.UUID
	var activated, validated, revoked, expires *time.Time
	var metrics, violations []byte
	var rotatedTo, rotatedFrom *string
	err := row.Scan(&id, &k.OrganizationID, &k.LookupValue, &k.Digest, &k.MaskedKey, &k.InstanceName, &k.InstanceURL,
		&k.Active, &k.CreatedAt, &activated, &validated, &revoked, &metrics, &violations,
		&expires, &rotatedTo, &rotatedFrom, &k.MaxInstances)
	if errors.Is(err, pgx.ErrNoRows) {
		return licensing.Key{}, licensing.ErrKeyNotFound
	}
	if err != nil {
		return licensing.Key{}, storeErr("", err)
	}
	k.ID = id.String()
	k.CreatedAt = k.CreatedAt.UTC()
	for dst, src := range map[*time.Time]*time.Time{&k.ActivatedAt: activated, &k.LastValidatedAt: validated, &k.RevokedAt: revoked,
		&k.ExpiresAt: expires} {
		if src != nil {
			*dst = src.UTC()
		}
	}
	if rotatedTo != nil {
		k.RotatedTo = *rotatedTo
	}
	if rotatedFrom != nil {
		k.RotatedFrom = *rotatedFrom
	}
	if metrics != nil {
		if err := json.Unmarshal(metrics, &k.LastMetrics); err != nil {
			return licensing.Key{}, fmt.Errorf("pgstore: last_metrics of %s: %w", k.ID, err)
		}
	}
	if violations != nil {
		if err := json.Unmarshal(violations, &k.LastViolations); err != nil {
			return licensing.Key{}, fmt.Errorf("pgstore: last_violations of %s: %w", k.ID, err)
		}
	}
	return k, nil
}

// optString gives NULL for "".
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// jsonOrNull encodes v, or gives NULL for a nil map or slice.
func jsonOrNull[T any](v T, isNil bool) *string {
	if isNil {
		return nil
	}
	b, _ := json.Marshal(v)
	s := string(b)
	return &s
}

// CreateKey implements licensing.Store. A duplicate id or lookup value gives
// licensing.ErrDuplicateKey.
func (s *Store) CreateKey(ctx context.Context, k licensing.Key) error {
	if !licensing.ValidKeyID(k.ID) {
		return licensing.ErrInvalidKeyID
	}
	if !licensing.ValidExpiry(k.ExpiresAt) {
		return licensing.ErrInvalidExpiry
	}
	if k.MaxInstances < 0 || k.MaxInstances > licensing.MaxInstancesLimit {
		return licensing.ErrInvalidMaxInstances
	}
	_, err := s.pool.Exec(ctx, insertKey, insertArgs(k)...)
	if isUniqueViolation(err) {
		return licensing.ErrDuplicateKey
	}
	if err != nil {
		return storeErr("create key", err)
	}
	return nil
}

// insertKey stores a key with the arguments insertArgs gives.
const insertKey = `INSERT INTO licensing_keys (` + columns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::text::jsonb, $14::text::jsonb, $15, $16, $17, $18)`

// insertArgs are the arguments of insertKey for k, whose id is valid.
func insertArgs(k licensing.Key) []any {
	return []any{uuid.MustParse(k.ID), k.OrganizationID, k.LookupValue, k.Digest, k.MaskedKey, k.InstanceName, k.InstanceURL, k.Active,
		k.CreatedAt, optTime(k.ActivatedAt), optTime(k.LastValidatedAt), optTime(k.RevokedAt),
		jsonOrNull(k.LastMetrics, k.LastMetrics == nil), jsonOrNull(k.LastViolations, k.LastViolations == nil),
		optTime(k.ExpiresAt), optString(k.RotatedTo), optString(k.RotatedFrom), k.MaxInstances}
}

// isUniqueViolation reports a unique violation: the id or the lookup value.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// KeyByID implements licensing.Store.
func (s *Store) KeyByID(ctx context.Context, id string) (licensing.Key, error) {
	if !licensing.ValidKeyID(id) {
		return licensing.Key{}, licensing.ErrKeyNotFound
	}
	return scanKey(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM licensing_keys WHERE id = $1`, uuid.MustParse(id)))
}

// KeyByLookup implements licensing.Store. With the read cache started
// (StartCache) and listening, a key read before is answered from memory.
// A PostgreSQL that does not answer within 5 seconds (validationTimeout)
// fails the call with licensing.ErrStoreUnavailable.
func (s *Store) KeyByLookup(ctx context.Context, lookup string) (licensing.Key, error) {
	c := s.cache.Load()
	if c == nil || !c.usable.Load() {
		return s.keyByLookup(ctx, lookup)
	}
	if k, ok := c.key(lookup); ok {
		return k, nil
	}
	start := c.begin()
	k, err := s.keyByLookup(ctx, lookup)
	if err == nil {
		c.putKey(start, k)
	}
	return k, err
}

func (s *Store) keyByLookup(ctx context.Context, lookup string) (licensing.Key, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, validationTimeout, errNoAnswer)
	defer cancel()
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM licensing_keys WHERE lookup_value = $1`, lookup))
	return k, noAnswer(ctx, err)
}

// validationTimeout bounds what validation asks of PostgreSQL (a
// KeyByLookup read, a SeatInstance): a PostgreSQL that does not answer
// (hung, or cut off by a network that drops packets without closing the
// connection) makes the call fail with licensing.ErrStoreUnavailable, a
// 503, after this long rather than leave the validation waiting for ever.
const validationTimeout = 5 * time.Second

// errNoAnswer is the cause of the contexts that validationTimeout bounds.
var errNoAnswer = fmt.Errorf("PostgreSQL did not answer within %v", validationTimeout)

// noAnswer turns err, met under ctx (bounded with errNoAnswer as its
// cause), into licensing.ErrStoreUnavailable when it is that bound that
// ran out; the caller's own deadline or cancellation is left as it is.
func noAnswer(ctx context.Context, err error) error {
	if err != nil && errors.Is(err, context.DeadlineExceeded) && errors.Is(context.Cause(ctx), errNoAnswer) {
		return fmt.Errorf("pgstore: %w: %w", licensing.ErrStoreUnavailable, errNoAnswer)
	}
	return err
}

// ListKeys implements licensing.Store.
func (s *Store) ListKeys(ctx context.Context, orgID string, after licensing.KeyCursor, limit int) ([]licensing.Key, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	var at *time.Time
	var id uuid.UUID
	if !after.IsZero() {
		at = &after.CreatedAt
		id, _ = uuid.Parse(after.ID) // an id that is no UUID sorts as the nil UUID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM licensing_keys WHERE organization_id = $1
		AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
		ORDER BY created_at DESC, id DESC LIMIT $4`, orgID, at, id, lim)
	if err != nil {
		return nil, storeErr("list keys", err)
	}
	defer rows.Close()
	keys := []licensing.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list keys", err)
	}
	return keys, nil // uuid order is the text order of canonical lower-case ids
}

// RevokeKey implements licensing.Store: the first revocation time is kept.
func (s *Store) RevokeKey(ctx context.Context, id string, at time.Time) (licensing.Key, error) {
	if !licensing.ValidKeyID(id) {
		return licensing.Key{}, licensing.ErrKeyNotFound
	}
	u := uuid.MustParse(id)
	defer s.invalidated(id)
	return scanKey(s.pool.QueryRow(ctx, `UPDATE licensing_keys
		SET active = false, revoked_at = COALESCE(revoked_at, $2)
		WHERE id = $1 RETURNING `+columns, u, at))
}

// RecordValidations implements licensing.Store with one UPDATE ... FROM
// unnest(...) statement per batch (more only when one batch names a key
// twice): the keys' rows, and in the same statement the rows of the
// instances that records with an InstanceID name (when the key still has
// them).
//
// The keys' rows are locked in key id order first (SELECT ... ORDER BY id
// FOR NO KEY UPDATE, whose lock is taken on each row as the sort yields
// it; the update of a row follows its lock), and an instance's row after
// its key's, so that batches that two servers write at once lock their
// common rows in one order and never deadlock, whatever plan PostgreSQL
// picks for each (a hash join would update in the table's physical
// order, a nested loop in the records' order).
func (s *Store) RecordValidations(ctx context.Context, recs []licensing.ValidationRecord) error {
	recs = slices.Clone(recs) // sorted here, not in the caller's slice
	slices.SortStableFunc(recs, func(a, b licensing.ValidationRecord) int {
		return cmp.Or(strings.Compare(a.KeyID, b.KeyID), strings.Compare(a.InstanceID, b.InstanceID))
	})
	for len(recs) > 0 {
		seen := make(map[uuid.UUID]bool, len(recs))
		var ids []uuid.UUID
		var firsts, ats []time.Time
		var names, urls, instances []string
		var metrics, violations []*string
		var later []licensing.ValidationRecord
		for _, r := range recs {
			u, err := uuid.Parse(r.KeyID)
			if err != nil {
				continue // not a key of ours: skipped, as the contract says
			}
			if seen[u] {
				later = append(later, r)
				continue
			}
			seen[u] = true
			first := r.FirstAt
			if first.IsZero() {
				first = r.At
			}
			ids = append(ids, u)
			firsts = append(firsts, first)
			ats = append(ats, r.At)
			names = append(names, r.InstanceName)
			urls = append(urls, r.InstanceURL)
			instances = append(instances, r.InstanceID)
			metrics = append(metrics, jsonOrNull(r.Metrics, r.Metrics == nil))
			violations = append(violations, jsonOrNull(r.Violations, r.Violations == nil))
		}
		if len(ids) > 0 {
			// A key's row is locked before its instances' rows (they join
			// the keys' RETURNING), the order in which SeatInstance locks
			// them too: the two never deadlock.
			_, err := s.pool.Exec(ctx, `WITH v AS (
				SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
					AS v(id, first_at, at, instance_name, instance_url, metrics, violations, instance_id)
			), locked AS MATERIALIZED (
				SELECT id FROM licensing_keys WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE
			), keys AS (
				UPDATE licensing_keys AS k SET
					last_validated_at = GREATEST(k.last_validated_at, v.at),
					activated_at = COALESCE(k.activated_at, v.first_at),
					instance_name = CASE WHEN v.instance_name <> '' THEN v.instance_name ELSE k.instance_name END,
					instance_url = CASE WHEN v.instance_url <> '' THEN v.instance_url ELSE k.instance_url END,
					last_metrics = COALESCE(v.metrics::jsonb, k.last_metrics),
					last_violations = COALESCE(v.violations::jsonb, k.last_violations)
				FROM v JOIN locked ON locked.id = v.id WHERE k.id = v.id RETURNING k.id
			)
			UPDATE key_instances AS i SET
				last_seen_at = GREATEST(i.last_seen_at, v.at),
				name = CASE WHEN v.instance_name <> '' THEN v.instance_name ELSE i.name END,
				url = CASE WHEN v.instance_url <> '' THEN v.instance_url ELSE i.url END,
				metrics = COALESCE(v.metrics::jsonb, i.metrics)
			FROM v JOIN keys ON keys.id = v.id
			WHERE v.instance_id <> '' AND i.key_id = v.id AND i.instance_id = v.instance_id`, ids, firsts, ats, names, urls, metrics, violations, instances)
			if err != nil {
				return storeErr("record validations", err)
			}
			if c := s.cache.Load(); c != nil {
				c.recorded(recs)
			}
		}
		recs = later
	}
	return nil
}

// storeErr wraps err, met while doing (may be empty), in
// licensing.ErrStoreUnavailable when it says that PostgreSQL could not be
// reached, the connection was lost or PostgreSQL lacks the resources to
// serve (no SQL error, or one of the classes 08 connection exception, 57P
// operator intervention and 53 insufficient resources, such as 53300 too
// many connections), so that callers answer 503 rather than 500. A
// cancelled or expired ctx is returned as it is.
func storeErr(doing string, err error) error {
	prefix := "pgstore: "
	if doing != "" {
		prefix += doing + ": "
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s%w", prefix, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !strings.HasPrefix(pgErr.Code, "08") && !strings.HasPrefix(pgErr.Code, "57P") &&
		!strings.HasPrefix(pgErr.Code, "53") {
		return fmt.Errorf("%s%w", prefix, err)
	}
	return fmt.Errorf("%s%w: %w", prefix, licensing.ErrStoreUnavailable, err)
}
