// Command listmem measures what listing costs the reference server in
// memory: it builds and starts the server on loopback in a temporary
// directory, creates N keys in one organization, then sends C concurrent
// unpaged list requests (each answer read to its end) and samples the
// server's resident memory (VmRSS) every 5 ms. It prints the resident
// memory before the lists, the peak during them, and the difference. The
// server writes at most two large answers at once (HandlerConfig.
// MaxLargeAnswers): a list answered 503 is asked again after Retry-After.
//
//	go run ./internal/cmd/listmem -keys 50000 -c 8
//
// Traffic goes only to 127.0.0.1, is bounded, and stops by itself.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensekit/licensing/internal/harness"
)

func main() {
	keys := flag.Int("keys", 50_000, "keys in the organization")
	conns := flag.Int("c", 8, "concurrent list requests")
	rounds := flag.Int("rounds", 3, "rounds of concurrent lists")
	store := flag.String("store", "file", "store kind")
	flag.Parse()
	if *keys > 1_000_000 || *conns > 256 || *rounds > 100 {
		fmt.Fprintln(os.Stderr, "listmem: -keys at most 1,000,000, -c at most 256, -rounds at most 100")
		os.Exit(2)
	}
	if err := run(*keys, *conns, *rounds, *store); err != nil {
		fmt.Fprintln(os.Stderr, "listmem:", err)
		os.Exit(1)
	}
}

func run(n, conns, rounds int, store string) error {
	tmp, err := os.MkdirTemp("", "listmem-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := harness.Build(harness.ServerCmd)
	if err != nil {
		return err
	}
	defer harness.RemoveBuilds()
	const token = "listmem-owner-token"
	sum := sha256.Sum256([]byte(token))
	cfg := filepath.Join(tmp, "config.json")
	if err := os.WriteFile(cfg, []byte(`{"issuer":"listmem","plans":{"business":{"selfHostingLicense":true}},"requiredFeature":"selfHostingLicense",
"organizations":[{"id":"org-1","name":"Big","ownerId":"u","plan":"business","active":true}],
"tokens":[{"sha256":"`+hex.EncodeToString(sum[:])+`","userId":"u"}]}`), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-store", store, "-config", cfg, "-data", filepath.Join(tmp, "data"),
		"-rate-limit", "0", "-owner-rate-limit", "0")
	p, err := harness.Start(cmd, harness.Config{DropLogAfterListen: true})
	if err != nil {
		return err
	}
	defer p.Stop()
	base := p.URL
	url := base + "/api/v1/licensing/keys"
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}

	start := time.Now()
	var made atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for made.Add(1) <= int64(n) {
				req, _ := http.NewRequest("POST", url, strings.NewReader(`{"instanceName":"instance with a name of some length"}`))
				req.Header.Set("Authorization", "Bearer "+token)
				res, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 201 {
					errs <- fmt.Errorf("create: %s", res.Status)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Printf("created %d keys in %s (store %s)\n", n, time.Since(start).Round(time.Millisecond), store)

	pid := cmd.Process.Pid
	before, err := rss(pid)
	if err != nil {
		return err
	}
	var peak atomic.Int64
	peak.Store(before)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if v, err := rss(pid); err == nil && v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	var bytesRead, busy atomic.Int64
	for r := 0; r < rounds; r++ {
		for c := 0; c < conns; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := listOnce(client, url, token, &busy)
				if err != nil {
					errs <- err
					return
				}
				defer res.Body.Close()
				var body struct{ Keys []json.RawMessage }
				b, err := io.ReadAll(res.Body)
				if err == nil {
					err = json.NewDecoder(bytes.NewReader(b)).Decode(&body)
				}
				if err != nil || res.StatusCode != 200 || len(body.Keys) != n {
					errs <- fmt.Errorf("list: %s, %d keys, %v", res.Status, len(body.Keys), err)
					return
				}
				bytesRead.Add(int64(len(b)))
			}()
		}
		wg.Wait()
	}
	close(stop)
	<-sampled
	select {
	case err := <-errs:
		return err
	default:
	}
	mb := func(v int64) float64 { return float64(v) / (1 << 20) }
	fmt.Printf("lists: %d rounds of %d concurrent, %.1f MB of answers each, %d answers 503 (busy) and asked again\n",
		rounds, conns, mb(bytesRead.Load())/float64(rounds*conns), busy.Load())
	fmt.Printf("resident before lists %.1f MB, peak during %.1f MB, growth %.1f MB (peak/before %.2f)\n",
		mb(before), mb(peak.Load()), mb(peak.Load()-before), float64(peak.Load())/float64(before))
	return nil
}

// listOnce sends an unpaged list request; a 503 (every large-answer slot
// taken) is asked again after its Retry-After, at most 100 times, and
// counted in busy.
func listOnce(client *http.Client, url, token string, busy *atomic.Int64) (*http.Response, error) {
	for range 100 {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil || res.StatusCode != http.StatusServiceUnavailable {
			return res, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		busy.Add(1)
		wait, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if err != nil || wait < 1 || wait > 60 {
			return nil, fmt.Errorf("list: 503 with Retry-After %q", res.Header.Get("Retry-After"))
		}
		time.Sleep(time.Duration(wait) * time.Second)
	}
	return nil, errors.New("list: 503 a hundred times")
}

// rss returns the resident memory of process pid in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}
