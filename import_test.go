package licensing_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
	"github.com/matryer/is"
)

// seedKey is the seed document's example key: 64 random hex characters, no
// checksum, as the seed system issued them.
const seedKey = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"

// TestImportKey: a key the seed system issued, imported for its
// organization, validates unchanged (the instance that phoned the seed
// system keeps working), is listed masked, can be revoked, and is stored
// only as its lookup value and digest.
func TestImportKey(t *testing.T) {
	body56 := seedKey[:56]
	withChecksum := body56 + fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body56)))
	tests := []struct{ name, key, sent string }{
		{"seed key, no checksum", seedKey, seedKey},
		{"seed key sent upper case", seedKey, strings.ToUpper(seedKey)},
		{"seed key imported upper case with spaces", " " + strings.ToUpper(seedKey) + "\n", seedKey},
		{"key with a checksum", withChecksum, withChecksum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			issued := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
			k, err := e.svc.ImportKey(context.Background(), "org-1", tc.key, issued)
			is.NoErr(err)
			is.Equal(k.CreatedAt, issued)
			is.Equal(k.MaskedKey, "a1b2c3d4..."+strings.ToLower(strings.TrimSpace(tc.key))[56:])
			stored, err := e.store.KeyByID(context.Background(), k.ID)
			is.NoErr(err)
			for _, f := range []string{stored.LookupValue, stored.Digest, stored.MaskedKey} {
				is.True(!strings.Contains(strings.ToLower(f), seedKey[:32])) // never kept in clear
			}
			r := e.do(t, "POST", validatePath, "", validateBody(tc.sent, `"instanceUrl":"app.example.com"`))
			is.Equal(r.status, 200) // unchanged for the instance
			is.Equal(r.body["organizationId"], "org-1")
			list := e.do(t, "GET", keysPath, "t-owner", "")
			is.Equal(list.body["keys"].([]any)[0].(map[string]any)["licenseKey"], k.MaskedKey)
			is.Equal(list.body["keys"].([]any)[0].(map[string]any)["createdAt"], "2025-06-01T08:00:00+00:00")
			is.Equal(e.do(t, "DELETE", keysPath+"/"+k.ID, "t-owner", "").status, 200)
			is.Equal(e.do(t, "POST", validatePath, "", validateBody(tc.sent, "")).status, 401) // revoked
		})
	}
}

func TestImportKeyRefuses(t *testing.T) {
	tests := []struct {
		name, org, key string
		want           error
	}{
		{"63 characters", "org-1", seedKey[:63], licensing.ErrKeyLength},
		{"not hex", "org-1", strings.Repeat("g", 64), licensing.ErrKeyNotHex},
		{"unknown organization", "org-9", seedKey, licensing.ErrOrgNotFound},
		{"already imported", "org-1", seedKey, licensing.ErrDuplicateKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnv(t, nil)
			if tc.want == licensing.ErrDuplicateKey {
				_, err := e.svc.ImportKey(context.Background(), "org-2", seedKey, time.Time{})
				is.NoErr(err) // even for another organization: one key, one record
			}
			_, err := e.svc.ImportKey(context.Background(), tc.org, tc.key, time.Time{})
			is.True(errors.Is(err, tc.want))
			is.True(!strings.Contains(err.Error(), seedKey[:32])) // the key is not repeated
		})
	}
}

// TestUnimportedKeyWithoutChecksum: a 64-hex key without a checksum that no
// record holds gets the one 401 of every invalid key.
func TestUnimportedKeyWithoutChecksum(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	r := e.do(t, "POST", validatePath, "", validateBody(seedKey, ""))
	is.Equal(r.status, 401)
	is.Equal(r.body["error"], "Invalid or revoked license key")
	ev := e.eventsOf(licensing.EventValidationFailed)
	is.Equal(len(ev), 1)
	is.Equal(ev[0].Outcome, licensing.OutcomeMalformed)
}

// TestImportKeyArgon2PrefixCollision: with Argon2Hasher the lookup value
// is a key's first 8 characters, so a second imported key that shares them
// is refused with ErrDuplicateKey, as ImportKey documents, and the first
// keeps validating.
func TestImportKeyArgon2PrefixCollision(t *testing.T) {
	is := is.New(t)
	svc, err := licensing.New(licensing.Config{
		Store:         licensing.NewMemoryStore(),
		Organizations: eligibleOrgs,
		Pepper:        testPepper,
		Hasher:        &licensing.Argon2Hasher{Time: 1, Memory: 64},
		Policy:        licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.test"},
		Logger:        slog.New(slog.DiscardHandler),
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
	orgs := eligibleOrgs
	service := func(h *licensing.Argon2Hasher) *licensing.Service {
		svc, err := licensing.New(licensing.Config{Store: store, Organizations: orgs, Hasher: h,
			Pepper: testPepper,
			Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.test"},
			Logger: slog.New(slog.DiscardHandler)})
		is.NoErr(err)
		t.Cleanup(func() { svc.Close(context.Background()) })
		return svc
	}
	ctx := context.Background()
	strong := service(&licensing.Argon2Hasher{Time: 12, Memory: 64})
	created, err := strong.CreateKey(ctx, licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}, licensing.CreateKeyInput{})
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
				Organizations: eligibleOrgs,
				Pepper:        testPepper,
				Policy:        licensing.Policy{Issuer: "licensing.test"}, Logger: slog.New(slog.DiscardHandler)})
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

// What held: eight imports of one key at once (upper and lower case
// spellings mixed), on the memory and the file store: exactly one wins, the
// others get ErrDuplicateKey, one key.created event; creation-time bounds.
func TestConcurrentImportOfOneKey(t *testing.T) {
	stores := map[string]func(t *testing.T) licensing.Store{
		"memory": func(t *testing.T) licensing.Store { return licensing.NewMemoryStore() },
		"file": func(t *testing.T) licensing.Store {
			s, err := filestore.Open(t.TempDir(), filestore.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			var created atomic.Int32
			svc, err := licensing.New(licensing.Config{
				Store:         mk(t),
				Organizations: eligibleOrgs,
				Pepper:        testPepper,
				Policy:        licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.test"},
				Logger:        slog.New(slog.DiscardHandler),
				OnEvent: func(_ context.Context, e licensing.Event) {
					if e.Type == licensing.EventKeyCreated {
						created.Add(1)
					}
				},
			})
			is.NoErr(err)
			defer svc.Close(context.Background())
			key := "c0ffee00" + strings.Repeat("ab", 28)
			var wins, dups atomic.Int32
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					k := key
					if i%2 == 1 {
						k = strings.ToUpper(key)
					}
					_, err := svc.ImportKey(context.Background(), "org-seed", k, time.Time{})
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, licensing.ErrDuplicateKey):
						dups.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			is.Equal(wins.Load(), int32(1))
			is.Equal(dups.Load(), int32(7))
			is.NoErr(svc.Close(context.Background()))
			is.Equal(created.Load(), int32(1))
			for _, at := range []time.Time{time.Unix(0, 0), time.Unix(-1, 0), time.Unix(0, 1<<63-1)} {
				_, err := svc.ImportKey(context.Background(), "org-seed", "d"+key[1:], at)
				is.Equal(licensing.ErrorCode(err), licensing.CodeInvalid)
			}
		})
	}
}
