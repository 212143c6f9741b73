package licensing_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestImportKeyArgon2PrefixCollision: with Argon2Hasher the lookup value
// is a key's first 8 characters, so a second imported key that shares them
// is refused with ErrDuplicateKey, as ImportKey documents, and the first
// keeps validating.
func TestImportKeyArgon2PrefixCollision(t *testing.T) {
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
	is.True(errors.Is(err, licensing.ErrDuplicateKey)) // documented: migrate with the HMAC hasher
	res, err := svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: a})
	is.NoErr(err)
	is.True(res.Valid)
}

// TestArgon2LoweredParametersKeepEveryKey: keys made under a stronger
// Argon2Hasher setting keep validating after the setting is lowered.
func TestArgon2LoweredParametersKeepEveryKey(t *testing.T) {
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

// TestImportKeyCreatedAtRange: a creation time the stores cannot keep (the
// Unix epoch, which they read as "none"; past 2262) is refused; the edges
// inside are kept exactly.
func TestImportKeyCreatedAtRange(t *testing.T) {
	tests := []struct {
		at time.Time
		ok bool
	}{
		{time.Unix(0, 0).UTC(), false},
		{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Unix(1, 0).UTC(), true},
		{time.Date(2262, 4, 10, 0, 0, 0, 0, time.UTC), true},
	}
	for _, tc := range tests {
		t.Run(tc.at.Format(time.RFC3339), func(t *testing.T) {
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
			k, err := svc.ImportKey(context.Background(), "org-1", strings.Repeat("ab", 32), tc.at)
			if !tc.ok {
				is.Equal(licensing.ErrorCode(err), licensing.CodeInvalid)
				return
			}
			is.NoErr(err)
			stored, err := store.KeyByID(context.Background(), k.ID)
			is.NoErr(err)
			is.True(stored.CreatedAt.Equal(tc.at)) // the date the vendor gave
		})
	}
}
