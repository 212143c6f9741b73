package server_test

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestCrashRecovery kills the server with SIGKILL while 32 clients create
// keys, restarts it on the same directory, and checks that every key that
// got a 201 validates and that no unanswered create left a half record.
func TestCrashRecovery(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	args := []string{"-config", cfgPath, "-data", filepath.Join(dir, "data"), "-rate-limit", "0"}
	acked := map[string]string{} // id -> key, over all rounds
	client := &http.Client{Timeout: 5 * time.Second}
	uuidRe := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

	for round := 0; round < rounds; round++ {
		is := is.New(t)
		p := start(t, nil, args...)
		var mu sync.Mutex
		roundAcked := map[string]string{}
		var unanswered atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for c := 0; c < 32; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest("POST", p.url+"/api/v1/licensing/keys", strings.NewReader(`{"instanceName":"crash"}`))
					req.Header.Set("Authorization", "Bearer token-owner-1")
					req.Header.Set("Content-Type", "application/json")
					res, err := client.Do(req)
					if err != nil {
						unanswered.Add(1)
						return // the server is gone
					}
					var body struct{ ID, LicenseKey string }
					err = json.NewDecoder(res.Body).Decode(&body)
					res.Body.Close()
					if err != nil || res.StatusCode != 201 {
						unanswered.Add(1) // an answer cut short is no 201
						return
					}
					mu.Lock()
					roundAcked[body.ID] = body.LicenseKey
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		p.cmd.Process.Kill() // SIGKILL at a random moment
		p.h.Wait()
		close(stop)
		wg.Wait()

		p = start(t, nil, args...)
		for id, k := range roundAcked {
			acked[id] = k
		}
		// every key that got a 201 in this round validates
		validateAll(t, p, roundAcked)
		// the list is consistent: every acknowledged key, plus at most the
		// unanswered creates, each a whole record
		status, list, _ := p.do(t, "GET", "/api/v1/licensing/keys", "token-owner-1", "")
		is.Equal(status, 200)
		listed := map[string]bool{}
		for _, item := range list["keys"].([]any) {
			k := item.(map[string]any)
			id, _ := k["id"].(string)
			is.True(uuidRe.MatchString(id))                       // whole records only
			is.True(len(k["licenseKey"].(string)) == 19)          // masked key present
			is.True(k["createdAt"] != nil && k["active"] == true) // created fields present
			is.Equal(k["instanceName"], "crash")
			listed[id] = true
		}
		for id := range acked {
			is.True(listed[id]) // no acknowledged key is lost
		}
		extra := len(listed) - len(acked)
		is.True(extra >= 0 && int64(extra) <= unanswered.Load()) // extras come only from unanswered creates
		for id := range listed {
			if _, ok := acked[id]; !ok {
				acked[id] = "" // durable but never acknowledged: fine, and counted from now on
			}
		}
		t.Logf("round %d: %d acknowledged, %d unanswered, %d listed", round, len(roundAcked), unanswered.Load(), len(listed))
		p.stop(t)
	}
	// at the end, every acknowledged key of every round still validates
	p := start(t, nil, args...)
	all := map[string]string{}
	for id, k := range acked {
		if k != "" {
			all[id] = k
		}
	}
	validateAll(t, p, all)
}

func validateAll(t *testing.T, p *proc, keys map[string]string) {
	t.Helper()
	work := make(chan string)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < 16; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				res, err := http.Post(p.url+"/api/v1/licensing/validate", "application/json", strings.NewReader(`{"licenseKey":"`+k+`"}`))
				if err != nil || res.StatusCode != 200 {
					failed.Add(1)
				}
				if err == nil {
					res.Body.Close()
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d acknowledged keys do not validate after the crash", n, len(keys))
	}
}

func TestTwoServersOnOneDirectory(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	start(t, nil, "-data", data)
	out, err := exec.Command(serverBin, "-addr", "127.0.0.1:0", "-data", data).CombinedOutput()
	var exit *exec.ExitError
	is.True(err != nil)
	is.True(errorsAs(err, &exit) && exit.ExitCode() != 0)                // the second exits non-zero
	is.True(strings.Contains(string(out), filepath.Join(data, ".lock"))) // naming the lock
	is.Equal(strings.Count(strings.TrimSpace(string(out)), "\n"), 0)     // in one line
	is.True(!strings.Contains(string(out), "owner token"))
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*target = e
	return ok
}
