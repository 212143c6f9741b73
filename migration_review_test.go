package licensing_test

// Adversarial review (review2).

import (
	"context"
	"fmt"
	"hash/crc32"
	"net/http"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// Promise (shared spec API.md): "self-hosted instances that already phone
// home must work against this server unchanged". Those instances hold keys
// the seed system issued: 64 random lower-case hex characters with no
// CRC-32 tail (the seed doc's own example, a1b2c3d4...). Even when an
// embedder puts such a key into its Store (Store.CreateKey with the
// Hasher's lookup value and digest, the only migration path there is),
// ValidateKey refuses it on the checksum before looking at the match
// (validate.go: `case !checksumOK: return s.reject(ctx, ReasonMalformed, nil)`),
// so every migrated instance gets 401 "Invalid or revoked license key".
// FAILS on the reviewed commit.
func TestReviewSeedIssuedKeyValidatesAfterMigration(t *testing.T) {
	body56 := "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"
	tests := []struct{ name, key string }{
		{"control: same body with CRC tail", body56 + fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body56)))},
		{"seed-issued key (seed doc example)", "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { migrated(t, tc.key) })
	}
}

func migrated(t *testing.T, seedKey string) {
	is := is.New(t)
	e := newEnv(t, nil)
	h, err := licensing.NewHMACHasher(testPepper)
	is.NoErr(err)
	digest, err := h.Digest(seedKey)
	is.NoErr(err)
	is.NoErr(e.store.CreateKey(context.Background(), licensing.Key{
		ID: "019c8a12-4567-7abc-8ef0-123456789abc", OrganizationID: "org-1",
		LookupValue: h.LookupValue(seedKey), Digest: digest, MaskedKey: licensing.MaskKey(seedKey),
		Active: true, CreatedAt: e.clock.Now(),
	}))
	res, err := http.Post(e.srv.URL+"/api/v1/licensing/validate", "application/json",
		strings.NewReader(`{"licenseKey":"`+seedKey+`","instanceUrl":"app.example.com"}`))
	is.NoErr(err)
	defer res.Body.Close()
	is.Equal(res.StatusCode, 200) // the instance that phoned the seed system keeps working
}
