package pgstore_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/pgstore"
	"github.com/licensekit/licensing/storetest"
)

type orgs struct{}

func (orgs) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	return licensing.Organization{ID: id, Name: "Acme", OwnerID: "u", Plan: "business", Active: true,
		Features: map[string]any{"selfHostingLicense": true, "maxCompanies": 10.0}}, nil
}

// BenchmarkValidateHTTP validates keys over loopback HTTP through one
// server, on the memory store (the baseline) and on PostgreSQL, without
// and with the read cache.
func BenchmarkValidateHTTP(b *testing.B) {
	for _, kind := range []string{"memory", "postgres", "postgres+cache"} {
		b.Run("store="+kind, func(b *testing.B) {
			var st licensing.Store = licensing.NewMemoryStore()
			if kind != "memory" {
				dsn := postgres(b).NewSchema(b)
				cfg, err := pgxpool.ParseConfig(dsn)
				if err != nil {
					b.Fatal(err)
				}
				cfg.MaxConns = 16
				pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer pool.Close()
				pst := pgstore.New(pool)
				if err := pst.Migrate(context.Background()); err != nil {
					b.Fatal(err)
				}
				if kind == "postgres+cache" {
					if err := pst.StartCache(pgstore.CacheConfig{}); err != nil {
						b.Fatal(err)
					}
					defer pst.Close()
					for pst.Err() != nil {
						time.Sleep(time.Millisecond)
					}
				}
				st = pst
			}
			svc, err := licensing.New(licensing.Config{Store: st, Organizations: orgs{},
				Pepper: bytes.Repeat([]byte{1}, 32), Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.test"}})
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close(context.Background())
			keys := make([]string, 1000)
			for i := range keys {
				c, err := svc.CreateKey(context.Background(), licensing.Actor{UserID: "u", OrganizationID: "org-1"}, licensing.CreateKeyInput{})
				if err != nil {
					b.Fatal(err)
				}
				keys[i] = c.LicenseKey
			}
			srv := httptest.NewServer(licensing.NewHandler(svc, licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
				return licensing.Actor{}, licensing.ErrUnauthorized
			}), licensing.HandlerConfig{RateLimit: licensing.Unlimited}))
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					res, err := client.Post(srv.URL+"/api/v1/licensing/validate", "application/json",
						strings.NewReader(`{"licenseKey":"`+keys[i*7919%len(keys)]+`","metrics":{"companyCount":3}}`))
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Fatalf("status %d", res.StatusCode)
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "validations/s")
		})
	}
}

// benchStore is a migrated store on a fresh schema with a pool of 16.
func benchStore(b *testing.B) *pgstore.Store {
	cfg, err := pgxpool.ParseConfig(postgres(b).NewSchema(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	st := pgstore.New(pool)
	if err := st.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkSeatInstance seats instances on 1,000 keys from 8 goroutines:
// instances that hold a seat (one UPDATE each), and new ones (the
// transaction that locks the key's row).
func BenchmarkSeatInstance(b *testing.B) {
	for _, kind := range []string{"seated", "new"} {
		b.Run(kind, func(b *testing.B) {
			st := benchStore(b)
			ctx := context.Background()
			now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			ids := make([]string, 1000)
			for i := range ids {
				k := storetest.NewKey("org-1", now)
				if err := st.CreateKey(ctx, k); err != nil {
					b.Fatal(err)
				}
				if _, _, err := st.SeatInstance(ctx, k.ID, licensing.Instance{ID: "seated", LastSeenAt: now}, 0, time.Hour); err != nil {
					b.Fatal(err)
				}
				ids[i] = k.ID
			}
			var n atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					inst := licensing.Instance{ID: "seated", LastSeenAt: now.Add(time.Second)}
					if kind == "new" {
						inst.ID = fmt.Sprint("new-", i)
					}
					if _, _, err := st.SeatInstance(ctx, ids[i*7919%int64(len(ids))], inst, 0, time.Hour); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkAppendEvents appends batches of 1 and of 50 events from 8
// goroutines: every append takes event_seq's row lock.
func BenchmarkAppendEvents(b *testing.B) {
	for _, size := range []int{1, 50} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			st := benchStore(b)
			ctx := context.Background()
			now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					batch := make([]licensing.Event, size)
					for i := range batch {
						batch[i] = newEvent("org-1", "", licensing.EventKeyCreated, now)
					}
					if err := st.AppendEvents(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
