package licensing_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestReviewImportKeyArgon2PrefixCollision (review3). Promise (keys.go
// ImportKey): a seed-system key (64 random hex, no checksum) is stored "so
// that the instance holding it keeps validating unchanged"; "a key already
// in the store gives ErrDuplicateKey".
//
// Reproduction: a Service with the Argon2Hasher (whose LookupValue is the
// key's first 8 characters, keygen.go:288) imports two different seed keys
// that share their first 8 hex characters.
//
// Observed: the second import fails with ErrDuplicateKey although that key
// was never stored, so its instance stops validating after the migration.
// Seed keys are random: 32 bits of prefix collide by the birthday bound
// for about 1 migration in 80 of 10,000 keys, and are expected at 100,000
// keys (about 1.2 collisions). CreateKey can draw another key on a
// collision; ImportKey cannot. Expected: both imported and both valid (or
// the documented limit: Argon2Hasher cannot import).
func TestReviewImportKeyArgon2PrefixCollision(t *testing.T) {
	is := is.New(t)
	svc, err := licensing.New(licensing.Config{
		Store: licensing.NewMemoryStore(),
		Organizations: licensing.OrganizationsFunc(func(ctx context.Context, id string) (licensing.Organization, error) {
			return licensing.Organization{ID: id, Name: "Seed SRL", OwnerID: "u", Plan: "business", Active: true,
				Features: map[string]any{"selfHostingLicense": true}}, nil
		}),
		Pepper: []byte("0123456789abcdef0123456789abcdef-review3"),
		Hasher: &licensing.Argon2Hasher{Time: 1, Memory: 64},
		Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.test"},
		Logger: slog.New(slog.DiscardHandler),
	})
	is.NoErr(err)
	defer svc.Close(context.Background())
	ctx := context.Background()
	a := "c0ffee00" + strings.Repeat("1", 56) // seed-system keys: random hex, no checksum
	b := "c0ffee00" + strings.Repeat("2", 56)
	_, err = svc.ImportKey(ctx, "org-seed", a, time.Time{})
	is.NoErr(err)
	_, err = svc.ImportKey(ctx, "org-seed", b, time.Time{})
	is.NoErr(err) // b is another key: it was never in the store
	res, err := svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: b})
	is.NoErr(err)
	is.True(res.Valid)
}

// TestReviewArgon2LoweredParametersLoseEveryKey (review3). Promise
// (keygen.go Verify: it "recomputes the Argon2id hash of key with the
// parameters and salt in digest": the PHC string carries its parameters so
// that they can change; Argon2Hasher's fields are settings with defaults).
// Commit 99e3491 made Verify refuse a digest that asks for more than the
// hasher's own parameters or 64 MiB / 10 iterations / 4 threads.
//
// Reproduction: a vendor creates a key with Argon2Hasher{Time: 12} (a
// stronger setting), then lowers it to the default Time (validations were
// too slow) and restarts on the same store.
//
// Observed: the key, and every key created before the change, answers 401
// ("unknown") from then on: a silent outage of every license, with no
// error at New or at start. Expected: keys created under earlier settings
// keep validating (a bound on stored parameters that a vendor's own past
// settings cannot exceed, or New refusing the lower setting over a store
// whose digests need more).
//
// Root cause: keygen.go Verify: `t > max(ot, 10)` (and the same for m, p)
// compares the digest's parameters with the hasher's current ones.
func TestReviewArgon2LoweredParametersLoseEveryKey(t *testing.T) {
	is := is.New(t)
	store := licensing.NewMemoryStore()
	orgs := licensing.OrganizationsFunc(func(ctx context.Context, id string) (licensing.Organization, error) {
		return licensing.Organization{ID: id, Name: "Acme", OwnerID: "u", Plan: "business", Active: true,
			Features: map[string]any{"selfHostingLicense": true}}, nil
	})
	service := func(h *licensing.Argon2Hasher) *licensing.Service {
		svc, err := licensing.New(licensing.Config{Store: store, Organizations: orgs, Hasher: h,
			Pepper: []byte("0123456789abcdef0123456789abcdef-review3"),
			Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.test"},
			Logger: slog.New(slog.DiscardHandler)})
		is.NoErr(err)
		t.Cleanup(func() { svc.Close(context.Background()) })
		return svc
	}
	ctx := context.Background()
	strong := service(&licensing.Argon2Hasher{Time: 12, Memory: 64})
	created, err := strong.CreateKey(ctx, licensing.Actor{UserID: "u", OrganizationID: "org-1"}, licensing.CreateKeyInput{})
	is.NoErr(err)
	res, err := strong.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: created.LicenseKey})
	is.NoErr(err)
	is.True(res.Valid)

	lowered := service(&licensing.Argon2Hasher{Memory: 64}) // Time: the default, 2
	res, err = lowered.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: created.LicenseKey})
	is.NoErr(err) // the same key, the same store
	is.True(res.Valid)
}

// TestReviewImportKeyCreatedAtOutOfRange (review3). Promise (keys.go
// ImportKey): "the returned Key has ... createdAt as its creation time
// (zero: now)". Reproduction: a seed export's dates as they come out of
// other systems: the Unix epoch for "unknown" and a far-future sentinel.
// Observed: ImportKey returns the date given, but the store (and the list)
// hold another one: 1970-01-01 comes back as the zero time (memstore.go
// nanos/fromNanos: 0 means unset), 2300-01-01 as a date in 1715
// (time.UnixNano overflows outside 1678..2262; the file store encodes the
// same way, filestore/codec.go). Expected: the date kept, or ImportKey
// refusing a date the store cannot hold.
func TestReviewImportKeyCreatedAtOutOfRange(t *testing.T) {
	for _, at := range []time.Time{time.Unix(0, 0).UTC(), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)} {
		t.Run(at.Format(time.DateOnly), func(t *testing.T) {
			is := is.New(t)
			store := licensing.NewMemoryStore()
			svc, err := licensing.New(licensing.Config{Store: store,
				Organizations: licensing.OrganizationsFunc(func(ctx context.Context, id string) (licensing.Organization, error) {
					return licensing.Organization{ID: id, Name: "Acme", OwnerID: "u", Plan: "business", Active: true}, nil
				}),
				Pepper: []byte("0123456789abcdef0123456789abcdef-review3"),
				Policy: licensing.Policy{Issuer: "licensing.test"}, Logger: slog.New(slog.DiscardHandler)})
			is.NoErr(err)
			defer svc.Close(context.Background())
			k, err := svc.ImportKey(context.Background(), "org-1", strings.Repeat("ab", 32), at)
			is.NoErr(err)
			is.True(k.CreatedAt.Equal(at))
			stored, err := store.KeyByID(context.Background(), k.ID)
			is.NoErr(err)
			t.Logf("imported with %s, stored %s", at, stored.CreatedAt)
			is.True(stored.CreatedAt.Equal(at)) // the date the vendor gave
		})
	}
}
