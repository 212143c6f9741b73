package main

// The revocations harness (-route revocations): what large answers cost
// validation. One reference server (memory store, rate limiter off), one
// organization with -revoked revoked keys and -keys live ones; each round
// measures validate with wrk alone, then under a flood of the revocations
// route (plain, then with a fresh nonce per request: a signature per
// answer), then under -list-c concurrent unpaged lists of the whole
// organization, and prints validate's p50 and p99 and their ratios to the
// same round's run without a flood.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type revocationsFlags struct {
	conns, rounds, keys, revoked, floodConns, listConns int
	dur                                                 time.Duration
	wrk                                                 string
}

// flood is one kind of background load.
type flood struct {
	name  string
	conns int
	req   func(n int64) *http.Request // nil: no flood
}

// floodResult counts a flood's answers by status.
type floodResult struct {
	answers map[int]int64
	bytes   int64
}

func runRevocations(f revocationsFlags) error {
	wrk, err := exec.LookPath(f.wrk)
	if err != nil {
		return fmt.Errorf("this harness drives validate with wrk (apt-get install wrk): %w", err)
	}
	w, cleanup, err := newWorkspace()
	if err != nil {
		return err
	}
	defer cleanup()
	tmp, bin, cfg, token := w.tmp, w.bin, w.cfg, ownerToken
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-config", cfg, "-data", filepath.Join(tmp, "memory"), "-store", "memory",
		"-rate-limit", "0", "-owner-rate-limit", "0", "-max-conns-per-addr", "0") // the load comes from one address
	t, err := startTarget("memory", cmd)
	if err != nil {
		return err
	}
	defer t.proc.Stop()

	start := time.Now()
	if err := populate(t, token, f.revoked, f.keys); err != nil {
		return err
	}
	fmt.Printf("revocations: %d revoked and %d live keys in one organization (made in %s); validate: wrk -t1 -c%d -d%s; %d rounds\n",
		f.revoked, f.keys, time.Since(start).Round(time.Millisecond), f.conns, f.dur, f.rounds)

	floods := []flood{
		{name: "none"},
		{name: "revocations", conns: f.floodConns, req: func(int64) *http.Request {
			r, _ := http.NewRequest("GET", t.url+"/api/v1/licensing/revocations?org=org-1", nil)
			return r
		}},
		{name: "revocations+nonce", conns: f.floodConns, req: func(n int64) *http.Request {
			r, _ := http.NewRequest("GET", t.url+"/api/v1/licensing/revocations?org=org-1&nonce=flood-"+strconv.FormatInt(n, 10), nil)
			return r
		}},
		{name: "list", conns: f.listConns, req: func(int64) *http.Request {
			r, _ := http.NewRequest("GET", t.url+"/api/v1/licensing/keys", nil)
			r.Header.Set("Authorization", "Bearer "+token)
			return r
		}},
	}
	fmt.Printf("%-5s %-18s %5s %9s %9s %9s %8s %9s  %s\n", "round", "flood", "conns", "req/s", "p50", "p99", "p50 ratio", "p99 ratio", "flood answers/s by status, MB/s")
	ratios := map[string][]float64{}
	for round := 1; round <= f.rounds; round++ {
		var base result
		for _, fl := range floods {
			r, fr, err := driveUnder(wrk, tmp, t, fl, f.conns, f.dur)
			if err != nil {
				return fmt.Errorf("round %d, flood %s: %w", round, fl.name, err)
			}
			if fl.req == nil {
				base = r
			}
			p50 := float64(r.p50) / float64(base.p50)
			ratios[fl.name] = append(ratios[fl.name], p50)
			fmt.Printf("%-5d %-18s %5d %9.0f %9s %9s %8.2f %9.2f  %s\n", round, fl.name, fl.conns, r.reqs, r.p50, r.p99,
				p50, float64(r.p99)/float64(base.p99), fr.summary(f.dur))
		}
	}
	fmt.Println("median over rounds of validate's p50 under each flood / without one:")
	for _, fl := range floods[1:] {
		fmt.Printf("  %-18s %.2f\n", fl.name, median(ratios[fl.name]))
	}
	return nil
}

// populate creates revoked+live keys in org-1 and revokes the first
// revoked of them; t.keys gets up to 1,000 live keys for wrk.
func populate(t *target, token string, revoked, live int) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(revoked+live) {
					return
				}
				id, key, err := createWithID(client, t.url, token)
				if err == nil && i < int64(revoked) {
					err = revoke(client, t.url, token, id)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil && i >= int64(revoked) && len(t.keys) < 1000 {
					t.keys = append(t.keys, key)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil && len(t.keys) == 0 {
		firstErr = errors.New("-keys must be at least 1: validate needs a live key")
	}
	return firstErr
}

func createWithID(client *http.Client, url, token string) (id, key string, err error) {
	req, _ := http.NewRequest("POST", url+"/api/v1/licensing/keys", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return "", "", err
	}
	defer res.Body.Close()
	var body struct{ ID, LicenseKey string }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 201 {
		return "", "", fmt.Errorf("create: %d %v", res.StatusCode, err)
	}
	return body.ID, body.LicenseKey, nil
}

func revoke(client *http.Client, url, token, id string) error {
	req, _ := http.NewRequest("DELETE", url+"/api/v1/licensing/keys/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("revoke: %s", res.Status)
	}
	return nil
}

// driveUnder runs wrk against validate while fl runs, and stops fl after.
func driveUnder(wrk, tmp string, t *target, fl flood, conns int, dur time.Duration) (result, floodResult, error) {
	fr := floodResult{answers: map[int]int64{}}
	if fl.req == nil {
		r, err := drive(wrk, tmp, t, conns, dur)
		return r, fr, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: fl.conns, MaxConnsPerHost: fl.conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var n atomic.Int64
	var wg sync.WaitGroup
	for range fl.conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				res, err := client.Do(fl.req(n.Add(1)).WithContext(ctx))
				if err != nil {
					continue
				}
				b, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				mu.Lock()
				fr.answers[res.StatusCode]++
				fr.bytes += b
				mu.Unlock()
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the flood is under way before wrk starts
	mu.Lock()
	clear(fr.answers)
	fr.bytes = 0
	mu.Unlock()
	r, err := drive(wrk, tmp, t, conns, dur)
	mu.Lock()
	snapshot := floodResult{answers: maps.Clone(fr.answers), bytes: fr.bytes}
	mu.Unlock()
	cancel()
	wg.Wait()
	return r, snapshot, err
}

func (fr floodResult) summary(d time.Duration) string {
	if len(fr.answers) == 0 {
		return "-"
	}
	var codes []int
	for c := range fr.answers {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	s := ""
	for _, c := range codes {
		s += fmt.Sprintf("%d: %.0f/s  ", c, float64(fr.answers[c])/d.Seconds())
	}
	return s + fmt.Sprintf("%.0f MB/s", float64(fr.bytes)/d.Seconds()/(1<<20))
}
