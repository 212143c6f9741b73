package licensing_test

import (
	"context"
	"fmt"
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
