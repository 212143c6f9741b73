package main

// The scale harness (-route scale): for each store, the reference server
// holding -small keys and the same server holding -big keys, driven in turn
// by wrk, round after round, so that the figure is the throughput at -big
// keys over the throughput at -small keys measured in the same round.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

type scaleFlags struct {
	conns, rounds, small, big, sample, seedConns int
	dur                                          time.Duration
	stores                                       []string
	wrk, profile                                 string
}

func runScale(f scaleFlags) error {
	wrk, err := exec.LookPath(f.wrk)
	if err != nil {
		return fmt.Errorf("this harness drives the servers with wrk (apt-get install wrk): %w", err)
	}
	w, cleanup, err := newWorkspace()
	if err != nil {
		return err
	}
	defer cleanup()
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.proc.Stop()
		}
	}()
	for _, store := range f.stores {
		for _, n := range []int{f.small, f.big} {
			name := fmt.Sprintf("%s-%d", store, n)
			args := []string{"-addr", "127.0.0.1:0", "-config", w.cfg, "-data", filepath.Join(w.tmp, name), "-store", store,
				"-rate-limit", "0", "-owner-rate-limit", "0", "-max-conns-per-addr", "0"} // the load comes from one address
			cmd := exec.Command(w.bin, args...)
			if f.profile != "" {
				cmd.Env = append(os.Environ(), "LICENSING_CPU_PROFILE="+filepath.Join(f.profile, name+".pprof"))
			}
			t, err := startTarget(name, cmd)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			targets = append(targets, t)
			start := time.Now()
			keys, err := seed(t.url, n, f.seedConns)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			t.keys = spread(keys, f.sample)
			// Every sampled key validated once before the clock runs, so
			// its instance holds a seat (a new seat is a durable write,
			// made once per instance) and a round measures steady state.
			if err := validateAll(t.url, t.keys, f.seedConns); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Printf("%s: %d keys created, %d of them validated once, in %s\n", name, n, len(t.keys),
				time.Since(start).Round(time.Second))
		}
	}

	for _, t := range targets { // one short run each, not counted: connections, caches, a first flush
		if _, err := drive(wrk, w.tmp, t, f.conns, time.Second); err != nil {
			return fmt.Errorf("warm-up, %s: %w", t.name, err)
		}
	}
	fmt.Printf("scale: wrk -t1 -c%d -d%s, %d rounds; each server's sample of at most %d keys cycled\n",
		f.conns, f.dur, f.rounds, f.sample)
	fmt.Printf("%-5s %-16s %9s %9s %9s %10s\n", "round", "target", "req/s", "p50", "p99", "cpu/req")
	ratios := map[string][]float64{} // store -> big/small throughput per round
	cpus := map[string][]float64{}   // store -> big/small CPU per request per round
	for round := 1; round <= f.rounds; round++ {
		order := append(slices.Clone(targets[round%len(targets):]), targets[:round%len(targets)]...)
		got := map[string]result{}
		for _, t := range order {
			r, err := drive(wrk, w.tmp, t, f.conns, f.dur)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round, t.name, err)
			}
			got[t.name] = r
			fmt.Printf("%-5d %-16s %9.0f %9s %9s %10s\n", round, t.name, r.reqs, r.p50, r.p99, r.cpu)
		}
		for _, store := range f.stores {
			s, b := got[fmt.Sprintf("%s-%d", store, f.small)], got[fmt.Sprintf("%s-%d", store, f.big)]
			ratios[store] = append(ratios[store], b.reqs/s.reqs)
			cpus[store] = append(cpus[store], float64(b.cpu)/float64(s.cpu))
			fmt.Printf("      %-16s throughput %d/%d keys %.2f, cpu/req %.2f\n", store, f.big, f.small, b.reqs/s.reqs,
				float64(b.cpu)/float64(s.cpu))
		}
	}
	fmt.Printf("median over rounds of each round's ratio, %d keys to %d keys:\n", f.big, f.small)
	for _, store := range f.stores {
		fmt.Printf("  %-8s throughput %.2f  cpu/req %.2fx\n", store, median(ratios[store]), median(cpus[store]))
	}
	for _, t := range targets {
		t.proc.Stop()
	}
	return nil
}

// seed creates n keys on the server at url over conns connections and
// returns them.
func seed(url string, n, conns int) ([]string, error) {
	keys := make([]string, n)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += conns {
				k, err := create(client, url, ownerToken)
				if err != nil {
					errs <- err
					return
				}
				keys[i] = k
			}
		}()
	}
	wg.Wait()
	close(errs)
	return keys, <-errs // nil when no worker failed
}

// spread returns at most n of keys, taken at even steps through all of
// them, so that a sample of a large store touches all of it.
func spread(keys []string, n int) []string {
	if n >= len(keys) {
		return keys
	}
	out := make([]string, n)
	for i := range out {
		out[i] = keys[i*len(keys)/n]
	}
	return out
}

// validateAll validates every key once with the body the rounds send.
func validateAll(url string, keys []string, conns int) error {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < len(keys); i += conns {
				if _, err := answerLength(client, url, body(keys[i], i+1)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func scaleStores(s string) ([]string, error) {
	stores := strings.Split(s, ",")
	for _, st := range stores {
		if st != "memory" && st != "file" {
			return nil, fmt.Errorf("-stores: %q is no store; want memory, file or memory,file", st)
		}
	}
	return stores, nil
}
