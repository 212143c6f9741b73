package licensing_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// slowStore blocks RecordValidations until released.
type slowStore struct {
	*licensing.MemoryStore
	release chan struct{}
	batches atomic.Int64
}

func (s *slowStore) RecordValidations(ctx context.Context, recs []licensing.ValidationRecord) error {
	<-s.release
	s.batches.Add(1)
	return s.MemoryStore.RecordValidations(ctx, recs)
}

func TestValidationNeverWaitsForTheBatch(t *testing.T) {
	is := is.New(t)
	st := &slowStore{MemoryStore: licensing.NewMemoryStore(), release: make(chan struct{})}
	e := newEnv(t, func(c *licensing.Config) { c.Store = st; c.FlushInterval = 10 * time.Millisecond })
	_, key := e.create(t, "t-owner", "prod")
	time.Sleep(30 * time.Millisecond) // the writer is now stuck in RecordValidations... once there is a batch
	for i := 0; i < 100; i++ {
		_, err := e.svc.ValidateKey(context.Background(), licensing.ValidateInput{LicenseKey: key, InstanceURL: "https://a.example"})
		is.NoErr(err) // answered while the store write is blocked
	}
	is.Equal(st.batches.Load(), int64(0)) // no batch has been written yet
	close(st.release)
	is.NoErr(e.svc.Close(context.Background())) // Close flushes what is pending
	keys, err := st.MemoryStore.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(keys[0].InstanceURL, "https://a.example")
	is.True(st.batches.Load() >= 1)
	is.True(st.batches.Load() <= 2) // 100 validations, one or two writes
}

// dupOnce makes the first CreateKey fail with a duplicate lookup value, as
// an Argon2 prefix collision would.
type dupOnce struct {
	*licensing.MemoryStore
	failed atomic.Bool
}

func (d *dupOnce) CreateKey(ctx context.Context, k licensing.Key) error {
	if d.failed.CompareAndSwap(false, true) {
		return licensing.ErrDuplicateKey
	}
	return d.MemoryStore.CreateKey(ctx, k)
}

// TestMetricsAreNeverShared: neither the caller's metrics map nor a listed
// key's metrics reach the store's own copy, whether the record is pending
// or written, and whether the metrics changed or not.
func TestMetricsAreNeverShared(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.FlushInterval = time.Hour })
	_, key := e.create(t, "t-owner", "prod")
	ctx := context.Background()
	actor := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	in := map[string]float64{"companyCount": 2}
	for round := 0; round < 3; round++ { // new metrics, then the same ones twice (the reuse path)
		_, err := e.svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: key, Metrics: in})
		is.NoErr(err)
		in["companyCount"] = 99 // the caller changes its map afterwards
		in["companyCount"] = 2
		page, err := e.svc.ListKeys(ctx, actor, "", 0)
		is.NoErr(err)
		listed := page.Keys
		is.Equal(listed[0].LastMetrics["companyCount"], 2.0)
		listed[0].LastMetrics["companyCount"] = -1 // a lister changes what it got (pending record)
		in2 := in
		in = map[string]float64{"companyCount": 2}
		in2["companyCount"] = 77
		is.NoErr(e.svc.Flush(ctx))
		page, err = e.svc.ListKeys(ctx, actor, "", 0)
		is.NoErr(err)
		listed = page.Keys
		is.Equal(listed[0].LastMetrics["companyCount"], 2.0) // the store kept its own copy
		listed[0].LastMetrics["companyCount"] = -2           // and again, once written
	}
	stored, err := e.store.ListKeys(ctx, "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	is.Equal(stored[0].LastMetrics, map[string]float64{"companyCount": 2})
}
