package licensing_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) licensing.Store { return licensing.NewMemoryStore() })
}

// TestMemoryStoreRecordValidationsAcrossChunks: a batch larger than the
// chunk the store applies under one hold of its lock is applied whole, in
// order, with records of one key in several chunks (the last one wins), and
// records of unknown or malformed ids skipped.
func TestMemoryStoreRecordValidationsAcrossChunks(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	st := licensing.NewMemoryStore()
	const n = 700 // several chunks
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		is.NoErr(st.CreateKey(ctx, licensing.Key{ID: ids[i], OrganizationID: "org-1", Active: true,
			LookupValue: fmt.Sprintf("lookup-%d", i), Digest: fmt.Sprintf("lookup-%d", i),
			MaskedKey: "aaaaaaaa...bbbbbbbb", CreatedAt: time.Unix(1, 0).UTC()}))
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var recs []licensing.ValidationRecord
	for i := 0; i < n; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		recs = append(recs, licensing.ValidationRecord{KeyID: ids[i], FirstAt: at, At: at,
			InstanceURL: fmt.Sprintf("https://%d.example", i), Metrics: map[string]float64{"users": float64(i)}})
		if i%300 == 0 { // the first key again, in a later chunk each time
			recs = append(recs, licensing.ValidationRecord{KeyID: ids[0], FirstAt: at, At: at,
				InstanceName: fmt.Sprintf("name-%d", i), Violations: []string{fmt.Sprint(i)}})
		}
		if i%250 == 0 {
			recs = append(recs, licensing.ValidationRecord{KeyID: "not-a-uuid", At: at},
				licensing.ValidationRecord{KeyID: uuid.Must(uuid.NewV7()).String(), At: at})
		}
	}
	is.NoErr(st.RecordValidations(ctx, recs))
	for i, id := range ids {
		k, err := st.KeyByID(ctx, id)
		is.NoErr(err)
		is.Equal(k.InstanceURL, fmt.Sprintf("https://%d.example", i))
		is.Equal(k.LastMetrics["users"], float64(i))
		is.Equal(k.ActivatedAt, t0.Add(time.Duration(i)*time.Second))
		if i == 0 {
			is.Equal(k.InstanceName, "name-600")                 // the last of its records
			is.Equal(k.LastViolations, []string{"600"})          // kept beside the metrics of another record
			is.Equal(k.LastValidatedAt, t0.Add(600*time.Second)) // the latest time
		}
		k2, err := st.KeyByLookup(ctx, fmt.Sprintf("lookup-%d", i))
		is.NoErr(err) // still found by lookup after its strings were rebuilt
		is.Equal(k2.ID, id)
	}
	recs[0].Metrics["users"] = -1 // the store kept copies
	k, _ := st.KeyByID(ctx, ids[0])
	is.Equal(k.LastMetrics["users"], 0.0)
}

// TestMemoryStoreLookupValues: the store indexes a lookup value of 64
// lower-case hex digits by the bytes it encodes and any other by its
// SHA-256; each value finds its own key only, whatever its spelling, and a
// duplicate of any spelling is refused.
func TestMemoryStoreLookupValues(t *testing.T) {
	hexLookup := strings.Repeat("0123456789abcdef", 4)
	lookups := []string{
		hexLookup,
		strings.ToUpper(hexLookup), // the same bytes in upper case: another value
		hexLookup[:63] + "g",       // 64 characters, not all hex
		hexLookup[:62],             // hex, shorter
		hexLookup + "00",           // hex, longer
		"a1b2c3d4",                 // a prefix, as Argon2Hasher's
		fmt.Sprintf("%x", sha256.Sum256([]byte("x"))), // a SHA-256 in hex
		"x", // whose SHA-256 is the value above
		"",  // the empty value
	}
	is := is.New(t)
	ctx := context.Background()
	st := licensing.NewMemoryStore()
	ids := map[string]string{}
	for _, l := range lookups {
		k := memKeyOf(l)
		is.NoErr(st.CreateKey(ctx, k))
		ids[l] = k.ID
	}
	for _, l := range lookups {
		k, err := st.KeyByLookup(ctx, l)
		is.NoErr(err)
		is.Equal(k.ID, ids[l]) // found by its own value
		is.Equal(k.LookupValue, l)
		is.True(errors.Is(st.CreateKey(ctx, memKeyOf(l)), licensing.ErrDuplicateKey))
	}
	for _, l := range []string{hexLookup[:63] + "0", strings.ToUpper(hexLookup[:63]) + "g", "A1B2C3D4", " "} {
		_, err := st.KeyByLookup(ctx, l)
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // a near miss finds nothing
	}
}

// memKeyOf is a stored key of org-1 with lookup value lookup.
func memKeyOf(lookup string) licensing.Key {
	return licensing.Key{ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: "org-1", Active: true,
		LookupValue: lookup, Digest: lookup, MaskedKey: "aaaaaaaa...bbbbbbbb", CreatedAt: time.Unix(1, 0).UTC()}
}

// TestMemoryStoreKeyLifetime: the memory store's SetKeyExpiry and RotateKey
// keep the Store contract, rotation fields survive a validation record, and
// a failed rotation changes nothing.
func TestMemoryStoreKeyLifetime(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	t.Run("expiry set, cleared, refused on a revoked key", func(t *testing.T) {
		is := is.New(t)
		st := licensing.NewMemoryStore()
		k := memKeyOf("l1")
		is.NoErr(st.CreateKey(ctx, k))
		got, err := st.SetKeyExpiry(ctx, k.ID, t0)
		is.NoErr(err)
		is.Equal(got.ExpiresAt, t0)
		got, _ = st.KeyByLookup(ctx, "l1")
		is.Equal(got.ExpiresAt, t0) // seen by the validation path
		got, err = st.SetKeyExpiry(ctx, k.ID, time.Time{})
		is.NoErr(err)
		is.True(got.ExpiresAt.IsZero()) // cleared: never expires
		_, err = st.RevokeKey(ctx, k.ID, t0)
		is.NoErr(err)
		_, err = st.SetKeyExpiry(ctx, k.ID, t0)
		is.True(errors.Is(err, licensing.ErrKeyRevoked))
		_, err = st.SetKeyExpiry(ctx, uuid.Must(uuid.NewV7()).String(), t0)
		is.True(errors.Is(err, licensing.ErrKeyNotFound))
	})
	t.Run("rotation", func(t *testing.T) {
		is := is.New(t)
		st := licensing.NewMemoryStore()
		old := memKeyOf("old")
		old.InstanceName, old.ExpiresAt = "Production", t0.Add(48*time.Hour)
		is.NoErr(st.CreateKey(ctx, old))
		is.NoErr(st.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: old.ID, At: t0,
			InstanceURL: "https://a.example", Metrics: map[string]float64{"users": 3}}}))
		other := memKeyOf("other")
		is.NoErr(st.CreateKey(ctx, other))

		clash := memKeyOf("other") // lookup value taken
		_, err := st.RotateKey(ctx, old.ID, clash, t0.Add(time.Hour))
		is.True(errors.Is(err, licensing.ErrDuplicateKey))
		got, _ := st.KeyByID(ctx, old.ID)
		is.Equal(got.RotatedTo, "")                   // nothing changed
		is.Equal(got.ExpiresAt, t0.Add(48*time.Hour)) // nothing changed
		_, err = st.KeyByID(ctx, clash.ID)
		is.True(errors.Is(err, licensing.ErrKeyNotFound)) // the new key was not stored

		next := memKeyOf("next")
		got, err = st.RotateKey(ctx, old.ID, next, t0.Add(time.Hour))
		is.NoErr(err)
		is.Equal(got.RotatedTo, next.ID)
		is.Equal(got.ExpiresAt, t0.Add(time.Hour)) // the earlier of its expiry and the overlap's end
		is.Equal(got.LastMetrics["users"], 3.0)    // kept
		n, err := st.KeyByLookup(ctx, "next")
		is.NoErr(err)
		is.Equal(n.RotatedFrom, old.ID)
		is.Equal(n.InstanceName, "Production")
		is.Equal(n.InstanceURL, "https://a.example")
		is.Equal(n.ExpiresAt, t0.Add(48*time.Hour)) // the old key's expiry, taken over

		_, err = st.RotateKey(ctx, old.ID, memKeyOf("again"), t0)
		is.True(errors.Is(err, licensing.ErrKeyRotated))
		is.NoErr(st.RecordValidations(ctx, []licensing.ValidationRecord{{KeyID: old.ID, At: t0, Metrics: map[string]float64{"users": 4}}}))
		got, _ = st.KeyByID(ctx, old.ID)
		is.Equal(got.RotatedTo, next.ID) // a validation record leaves rotation alone

		later := memKeyOf("later")
		later.ExpiresAt = time.Time{}
		_, err = st.RevokeKey(ctx, other.ID, t0)
		is.NoErr(err)
		_, err = st.RotateKey(ctx, other.ID, later, t0)
		is.True(errors.Is(err, licensing.ErrKeyRevoked))
		_, err = st.RotateKey(ctx, uuid.Must(uuid.NewV7()).String(), later, t0)
		is.True(errors.Is(err, licensing.ErrKeyNotFound))

		never := memKeyOf("never")
		is.NoErr(st.CreateKey(ctx, never))
		got, err = st.RotateKey(ctx, never.ID, later, t0.Add(time.Hour))
		is.NoErr(err)
		is.Equal(got.ExpiresAt, t0.Add(time.Hour)) // a key that never expired ends with the overlap
	})
}
