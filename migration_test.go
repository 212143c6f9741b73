package licensing_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
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
