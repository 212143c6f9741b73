// Command loadgen is the load harness. With -route create it builds and
// starts the reference server once per store (memory, then file) on
// loopback, in temporary directories, drives each from this separate
// process with C concurrent keep-alive connections for a fixed time, and
// prints requests per second and the file/memory ratio measured in the same
// run.
//
// With -route validate it starts a floor server (net/http with the same
// JSON decode and an answer of the same size), the reference server on the
// memory store, on the file store and on the memory store with the request
// log on (rate limiter off), creates -keys keys on each, and drives them in
// turn, -rounds times, with wrk (1 thread, -c connections, keep-alive, the
// keys interleaved); it prints req/s, p50, p99 and server CPU per request
// (from /proc/<pid>/stat) and the ratios to the floor. -profile DIR writes
// a CPU profile of each server there. The targets postgres and
// postgres+nocache (-cache-keys 0) run licensing-server-pg on a schema of
// their own in the database of -dsn (made with psql). A target named
// <store>+hooks (memory+hooks, file+hooks, postgres+hooks) sends webhooks
// of every event to a receiver that never answers (hooks.go).
//
//	go run ./internal/cmd/loadgen -route create -c 32 -d 10s
//	go run ./internal/cmd/loadgen -route validate -c 32 -d 5s -rounds 3
//	go run ./internal/cmd/loadgen -route revocations -c 8 -d 5s -rounds 3
//
// With -route revocations it starts the reference server on the memory
// store, makes one organization of -revoked revoked and -live live keys,
// and measures validate's latency with wrk alone and under a flood of the
// revocations route (-flood-c connections; plain, then with a nonce per
// request) and under -list-c concurrent unpaged lists of the organization
// (see revocations.go).
//
// Traffic goes only to 127.0.0.1, is bounded in time, and stops by itself.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensekit/licensing/internal/harness"
)

func main() {
	route := flag.String("route", "create", "create, validate or revocations")
	conns := flag.Int("c", 32, "concurrent connections")
	dur := flag.Duration("d", 10*time.Second, "duration per store")
	stores := flag.String("stores", "memory,file", "stores to measure, the first is the baseline")
	rounds := flag.Int("rounds", 3, "validate: rounds, each driving every target once")
	keys := flag.Int("keys", 2000, "validate: keys per server")
	targets := flag.String("targets", "floor,memory,file,memory+reqlog", "validate: servers, the floor first")
	dsn := flag.String("dsn", "", "validate: PostgreSQL connection string (keyword/value form) for the postgres and postgres+nocache targets; a schema loadgen_N is made per target")
	profile := flag.String("profile", "", "validate: directory for a CPU profile of each server")
	wrk := flag.String("wrk", "wrk", "validate, revocations: the wrk binary")
	revoked := flag.Int("revoked", 25_000, "revocations: revoked keys in the organization")
	live := flag.Int("live", 25_000, "revocations: live keys in the organization (validated, and listed with the revoked ones)")
	floodConns := flag.Int("flood-c", 12, "revocations: connections flooding the revocations route")
	listConns := flag.Int("list-c", 4, "revocations: concurrent unpaged lists of the organization")
	serve, size := floorFlags(flag.CommandLine)
	flag.Parse()
	if *serve {
		if err := serveFloor(*size); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if *route == "revocations" {
		if *rounds < 1 || *rounds > 20 || *dur > 5*time.Minute || *conns > 1024 || *live < 1 || *revoked < 0 ||
			*revoked+*live > 1_000_000 || *floodConns < 1 || *floodConns > 256 || *listConns < 1 || *listConns > 64 {
			fmt.Fprintln(os.Stderr, "loadgen: -rounds 1 to 20, -d at most 5m, -c at most 1024, -live at least 1, -revoked+-live at most 1,000,000, -flood-c 1 to 256, -list-c 1 to 64")
			os.Exit(2)
		}
		err := runRevocations(revocationsFlags{conns: *conns, rounds: *rounds, keys: *live, revoked: *revoked,
			floodConns: *floodConns, listConns: *listConns, dur: *dur, wrk: *wrk})
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if *route == "validate" {
		if *rounds < 1 || *rounds > 20 || *dur > 5*time.Minute || *conns > 1024 || *keys < 1 {
			fmt.Fprintln(os.Stderr, "loadgen: -rounds 1 to 20, -d at most 5m, -c at most 1024, -keys at least 1")
			os.Exit(2)
		}
		if *profile != "" {
			if p, err := filepath.Abs(*profile); err == nil {
				*profile = p
			}
		}
		err := runValidate(validateFlags{conns: *conns, rounds: *rounds, keys: *keys, dur: *dur,
			targets: *targets, profile: *profile, wrk: *wrk, dsn: *dsn})
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if *dur > 5*time.Minute || *conns > 1024 {
		fmt.Fprintln(os.Stderr, "loadgen: -d at most 5m, -c at most 1024")
		os.Exit(2)
	}
	if err := run(*route, *conns, *dur, strings.Split(*stores, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(route string, conns int, dur time.Duration, stores []string) error {
	w, cleanup, err := newWorkspace()
	if err != nil {
		return err
	}
	defer cleanup()
	tmp, bin, cfg, token := w.tmp, w.bin, w.cfg, ownerToken

	var base float64
	for i, store := range stores {
		rate, err := measure(bin, cfg, filepath.Join(tmp, store), store, token, route, conns, dur)
		if err != nil {
			return fmt.Errorf("%s: %w", store, err)
		}
		if i == 0 {
			base = rate
		}
		fmt.Printf("%-8s %-8s c=%d d=%s  %8.0f req/s  ratio %.2f\n", route, store, conns, dur, rate, rate/base)
	}
	return nil
}

func measure(bin, cfg, data, store, token, route string, conns int, dur time.Duration) (float64, error) {
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-store", store, "-config", cfg, "-data", data, "-rate-limit", "0", "-owner-rate-limit", "0",
		"-max-conns-per-addr", "0") // the load comes from one address
	p, err := harness.Start(cmd, harness.Config{DropLogAfterListen: true})
	if err != nil {
		return 0, err
	}
	defer p.Stop()
	url := p.URL
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := create(client, url, token)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d requests failed", f)
	}
	return float64(done.Load()) / elapsed.Seconds(), nil
}

func create(client *http.Client, url, token string) (string, error) {
	req, _ := http.NewRequest("POST", url+"/api/v1/licensing/keys", strings.NewReader(`{"instanceName":"load"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body struct{ LicenseKey string }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 201 {
		return "", fmt.Errorf("create: %d %v", res.StatusCode, err)
	}
	return body.LicenseKey, nil
}
