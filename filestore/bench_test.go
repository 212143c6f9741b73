package filestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/licensekit/licensing"
)

// BenchmarkCreateHTTP creates keys over loopback HTTP with 32 concurrent
// clients, on the memory store (the baseline) and on the file store.
func BenchmarkCreateHTTP(b *testing.B) {
	for _, kind := range []string{"memory", "file"} {
		b.Run("store="+kind, func(b *testing.B) {
			var st licensing.Store = licensing.NewMemoryStore()
			var fst *Store
			if kind == "file" {
				var err error
				fst, err = Open(b.TempDir(), Options{Logger: quiet()})
				if err != nil {
					b.Fatal(err)
				}
				defer fst.Close()
				st = fst
			}
			svc, err := licensing.New(licensing.Config{Store: st, Organizations: orgs{}, Pepper: bytes.Repeat([]byte{1}, 32), Policy: licensing.Policy{Issuer: "licensing.test"}})
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close(context.Background())
			auth := licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
				return licensing.Actor{UserID: "u", OrganizationID: "org-1"}, nil
			})
			srv := httptest.NewServer(licensing.NewHandler(svc, auth, licensing.HandlerConfig{RateLimit: licensing.Unlimited, OwnerRateLimit: licensing.Unlimited}))
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)) // 32 clients
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Post(srv.URL+"/api/v1/licensing/keys", "application/json", strings.NewReader(`{"instanceName":"bench"}`))
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 201 {
						b.Fatalf("status %d", res.StatusCode)
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/create")
			if fst != nil {
				_, syncs := fst.log.stats()
				b.ReportMetric(float64(syncs)/float64(b.N), "fsyncs/create")
			}
		})
	}
}

// realisticKey is a key as the Service makes it: UUIDv7 id, HMAC lookup
// value that is also the digest, masked key, an instance name.
func realisticKey(i int, created time.Time) licensing.Key {
	var raw [32]byte
	rand.Read(raw[:])
	lookup := hex.EncodeToString(raw[:])
	return licensing.Key{
		ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: "org-" + strconv.Itoa(i%1000),
		LookupValue: lookup, Digest: lookup, MaskedKey: lookup[:8] + "..." + lookup[56:],
		InstanceName: "Production Server", Active: true, CreatedAt: created,
	}
}

// BenchmarkOpen1M measures Open of a store of 1,000,000 keys (a snapshot
// plus a log of 10,000 more creates), and the heap it holds per key.
func BenchmarkOpen1M(b *testing.B) {
	const n = 1_000_000
	dir := filepath.Join(b.TempDir(), "store")
	s, err := Open(dir, Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < n-10_000; i++ {
		if err := s.bulk.Load(realisticKey(i, now)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Compact(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 10_000; i += 100 {
		done := make(chan error, 100)
		for j := 0; j < 100; j++ {
			go func(i int) { done <- s.CreateKey(ctx, realisticKey(i, now)) }(i + j)
		}
		for j := 0; j < 100; j++ {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	}
	s.Close()
	s = nil
	var sizes []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fi, _ := e.Info()
		sizes = append(sizes, fmt.Sprintf("%s=%dMB", e.Name(), fi.Size()>>20))
	}
	b.Logf("files: %s", strings.Join(sizes, " "))

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t0 := time.Now()
		st, err := Open(dir, Options{Logger: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		elapsed := time.Since(t0)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if st.bulk.Len() != n {
			b.Fatalf("%d keys", st.bulk.Len())
		}
		b.ReportMetric(elapsed.Seconds(), "open-s")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/key")
		runtime.KeepAlive(st)
		st.Close()
	}
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSeatInstance seats instances on 1,000 keys from 8 goroutines:
// instances that hold a seat (memory only, under the key's seat lock), and
// new ones (a record fsynced per seat, group-committed across keys).
func BenchmarkSeatInstance(b *testing.B) {
	for _, kind := range []string{"seated", "new"} {
		b.Run(kind, func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{Logger: quiet()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			ids := make([]string, 1000)
			for i := range ids {
				k := realisticKey(i, now)
				if err := s.CreateKey(ctx, k); err != nil {
					b.Fatal(err)
				}
				if _, _, err := s.SeatInstance(ctx, k.ID, licensing.Instance{ID: "seated", LastSeenAt: now}, 0, time.Hour); err != nil {
					b.Fatal(err)
				}
				ids[i] = k.ID
			}
			var n atomic.Int64
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					inst := licensing.Instance{ID: "seated", LastSeenAt: now.Add(time.Second)}
					if kind == "new" {
						inst.ID = "new-" + strconv.FormatInt(i, 10)
					}
					if _, _, err := s.SeatInstance(ctx, ids[i*7919%int64(len(ids))], inst, 0, time.Hour); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
