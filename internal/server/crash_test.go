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

// TestCrashWithRevokes kills the server binary with SIGKILL
// while clients create, revoke and validate keys at once, restarts it,
// and checks that every key that got a 201 and no 200 revoke validates,
// and every key whose revoke got a 200 is refused.
func TestCrashWithRevokes(t *testing.T) {
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	args := []string{"-config", cfgPath, "-data", filepath.Join(dir, "data"), "-rate-limit", "0", "-owner-rate-limit", "0"}
	client := &http.Client{Timeout: 5 * time.Second}
	var mu sync.Mutex
	created := map[string]string{} // id -> key, 201'd
	revoked := map[string]bool{}   // id -> 200'd revoke
	tried := map[string]bool{}     // id -> revoke sent (maybe durable without an answer)
	send := func(url, method, path, body string, owner bool) (int, map[string]any, error) {
		var rd *strings.Reader
		if body != "" {
			rd = strings.NewReader(body)
		} else {
			rd = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, url+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if owner {
			req.Header.Set("Authorization", "Bearer token-owner-1")
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
			return 0, nil, err
		}
		return res.StatusCode, m, nil
	}
	for round := 0; round < rounds; round++ {
		is := is.New(t)
		p := start(t, nil, args...)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		worker := func(kind int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				switch kind {
				case 0: // create
					status, m, err := send(p.url, "POST", "/api/v1/licensing/keys", `{"instanceName":"c"}`, true)
					if err != nil {
						return
					}
					if status == 201 {
						mu.Lock()
						created[m["id"].(string)] = m["licenseKey"].(string)
						mu.Unlock()
					}
				case 1: // revoke a random created key
					mu.Lock()
					var id string
					for k := range created {
						if !tried[k] {
							id = k
							break
						}
					}
					if id != "" {
						tried[id] = true
					}
					mu.Unlock()
					if id == "" {
						time.Sleep(time.Millisecond)
						continue
					}
					status, _, err := send(p.url, "DELETE", "/api/v1/licensing/keys/"+id, "", true)
					if err != nil {
						return
					}
					if status == 200 {
						mu.Lock()
						revoked[id] = true
						mu.Unlock()
					}
				case 2: // validate a random created key, with metrics
					mu.Lock()
					var key string
					for _, k := range created {
						key = k
						break
					}
					mu.Unlock()
					if key == "" {
						time.Sleep(time.Millisecond)
						continue
					}
					if _, _, err := send(p.url, "POST", "/api/v1/licensing/validate",
						`{"licenseKey":"`+key+`","instanceName":"v","metrics":{"companyCount":`+string(rune('0'+i%10))+`}}`, false); err != nil {
						return
					}
				}
			}
		}
		for c := 0; c < 12; c++ {
			wg.Add(1)
			go worker(c % 3)
		}
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		p.cmd.Process.Kill()
		p.h.Wait()
		close(stop)
		wg.Wait()

		p = start(t, nil, args...)
		mu.Lock()
		bad := 0
		for id, key := range created {
			status, _, err := send(p.url, "POST", "/api/v1/licensing/validate", `{"licenseKey":"`+key+`"}`, false)
			is.NoErr(err)
			want := 200
			if revoked[id] {
				want = 401
			}
			if status != want && !(tried[id] && !revoked[id]) {
				bad++
				t.Errorf("round %d: key %s (revoked %v): status %d, want %d", round, id, revoked[id], status, want)
			}
		}
		t.Logf("round %d: %d created, %d revoked, %d wrong", round, len(created), len(revoked), bad)
		mu.Unlock()
		p.stop(t)
	}
}
