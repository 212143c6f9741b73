package server_test

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

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
