package pgstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/harness"
	"github.com/matryer/is"
)

// buildServer returns licensing-server-pg, built once per test binary.
func buildServer(t *testing.T) string {
	t.Helper()
	return harness.BuildTB(t, harness.PostgresServerCmd)
}

// server is one running licensing-server-pg.
type server struct {
	url  string
	cmd  *exec.Cmd
	logs *harness.Buffer
	proc *harness.Process
}

// startLicensingServer runs licensing-server-pg with args, waits until it
// listens and stops it when the test ends.
func startLicensingServer(t *testing.T, args ...string) *server {
	t.Helper()
	cmd := exec.Command(buildServer(t), append([]string{"-addr", "127.0.0.1:0", "-rate-limit", "0"}, args...)...)
	cmd.Env = append(os.Environ(), "LICENSING_PEPPER="+strings.Repeat("ab", 32)) // servers of one database share the pepper
	p := harness.StartTB(t, cmd, harness.Config{})
	return &server{url: p.URL, cmd: p.Cmd, logs: p.Log, proc: p}
}

func (s *server) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func writeConfig(t *testing.T) string {
	sum := sha256.Sum256([]byte("owner-token"))
	cfg := `{"plans": {"business": {"selfHostingLicense": true}}, "requiredFeature": "selfHostingLicense",
  "organizations": [{"id": "org-1", "name": "Acme", "ownerId": "user-1", "plan": "business", "active": true}],
  "tokens": [{"sha256": "` + hex.EncodeToString(sum[:]) + `", "userId": "user-1"}]}`
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sharedDataDir returns a new data directory holding the signing keys of
// the data directory from, as the servers of one store share them.
func sharedDataDir(t *testing.T, from string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"signing-ed25519.pem", "signing-rsa.pem", "signing-keys.json"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func listIDs(t *testing.T, s *server) []string {
	t.Helper()
	status, body := s.do(t, "GET", "/api/v1/licensing/keys", "owner-token", "")
	if status != 200 {
		t.Fatalf("list: %d", status)
	}
	var ids []string
	for _, k := range body["keys"].([]any) {
		ids = append(ids, k.(map[string]any)["id"].(string))
	}
	return ids
}

func TestTwoServersOneDatabase(t *testing.T) {
	is := is.New(t)
	_, _, dsn := newStore(t)
	cfg := writeConfig(t)
	dataA := t.TempDir()
	a := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", dataA)
	b := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", sharedDataDir(t, dataA))

	status, created := a.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{"instanceName":"prod"}`)
	is.Equal(status, 201)
	id, key := created["id"].(string), created["licenseKey"].(string)
	status, _ = b.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 200) // created on A, validates on B
	status, _ = b.do(t, "DELETE", "/api/v1/licensing/keys/"+id, "owner-token", "")
	is.Equal(status, 200)
	status, _ = a.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 401) // revoked on B, refused on A at the very next request

	// 32 concurrent creates through both servers
	var mu sync.Mutex
	got := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(s *server) {
			defer wg.Done()
			status, body := s.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
			if status != 201 {
				t.Errorf("create: %d", status)
				return
			}
			mu.Lock()
			got[body["id"].(string)] = true
			mu.Unlock()
		}([]*server{a, b}[i%2])
	}
	wg.Wait()
	is.Equal(len(got), 32) // all distinct
	listA, listB := listIDs(t, a), listIDs(t, b)
	is.Equal(listA, listB) // both servers list the same records
	is.Equal(len(listA), 33)
	for id := range got {
		found := false
		for _, l := range listA {
			found = found || l == id
		}
		is.True(found) // none lost
	}
}

func TestServerRefusesAnotherPepper(t *testing.T) {
	is := is.New(t)
	_, _, dsn := newStore(t)
	cfg := writeConfig(t)
	a := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", t.TempDir())
	status, created := a.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
	is.Equal(status, 201)

	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"environment", []string{"LICENSING_PEPPER=" + strings.Repeat("cd", 32)}, "the pepper from the LICENSING_PEPPER environment variable"},
		{"a new pepper file", nil, "/pepper is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			data := t.TempDir()
			cmd := exec.Command(buildServer(t), "-addr", "127.0.0.1:0", "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", data)
			env := []string{}
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "LICENSING_PEPPER=") {
					env = append(env, kv)
				}
			}
			cmd.Env = append(env, tc.env...)
			out, err := cmd.CombinedOutput()
			is.True(err != nil) // refuses to start
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			is.True(strings.Contains(last, tc.want))                                  // naming the pepper's source
			is.True(strings.Contains(last, "every issued key would stop validating")) // and why
			_, err = os.Stat(filepath.Join(data, "pepper"))
			is.True(os.IsNotExist(err)) // a refused pepper is not kept
		})
	}
	status, _ = a.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+created["licenseKey"].(string)+`"}`)
	is.Equal(status, 200) // the first server is unaffected
}

// TestNewDataDirOverADatabaseWithKeys: a server started with a new data
// directory over a database that holds keys refuses to make signing keys
// no deployed client trusts, naming the way out; with the first server's
// signing files copied in (the documented way to run several servers) it
// starts and publishes the same keys.
func TestNewDataDirOverADatabaseWithKeys(t *testing.T) {
	is := is.New(t)
	_, _, dsn := newStore(t)
	cfg := writeConfig(t)
	dataA := t.TempDir()
	a := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", dataA)
	status, _ := a.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
	is.Equal(status, 201)

	cmd := exec.Command(buildServer(t), "-addr", "127.0.0.1:0", "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", t.TempDir())
	cmd.Env = append(os.Environ(), "LICENSING_PEPPER="+strings.Repeat("ab", 32))
	out, err := cmd.CombinedOutput()
	is.True(err != nil) // refused
	is.True(strings.Contains(string(out), "the store already holds keys"))
	is.True(strings.Contains(string(out), "-rotate-signing-keys"))

	dataC := sharedDataDir(t, dataA)
	c := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", dataC)
	_, jwksA := a.do(t, "GET", "/api/v1/licensing/public-keys", "", "")
	_, jwksC := c.do(t, "GET", "/api/v1/licensing/public-keys", "", "")
	is.Equal(jwksA, jwksC) // the same keys: tokens from either verify with both
}

// TestEmptyDatabaseUnderADataDirThatIssuedKeys: a server whose data
// directory recorded issued keys (keys-issued.json) and whose -dsn now
// names an empty database (a new one, a wrong DSN) refuses to start,
// naming the record and how to start over; with the database that holds
// the keys it starts.
func TestEmptyDatabaseUnderADataDirThatIssuedKeys(t *testing.T) {
	is := is.New(t)
	_, _, dsn := newStore(t)
	_, _, empty := newStore(t)
	cfg := writeConfig(t)
	data := t.TempDir()
	cmd := exec.Command(buildServer(t), "-addr", "127.0.0.1:0", "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", data)
	cmd.Env = append(os.Environ(), "LICENSING_PEPPER="+strings.Repeat("ab", 32))
	p := harness.StartTB(t, cmd, harness.Config{})
	a := &server{url: p.URL, cmd: p.Cmd, logs: p.Log}
	status, _ := a.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
	is.Equal(status, 201)
	harness.StopTB(t, p)

	cmd = exec.Command(buildServer(t), "-addr", "127.0.0.1:0", "-store", "postgres", "-dsn", empty, "-config", cfg, "-data", data)
	cmd.Env = append(os.Environ(), "LICENSING_PEPPER="+strings.Repeat("ab", 32))
	out, err := cmd.CombinedOutput()
	is.True(err != nil) // refused
	is.True(strings.Contains(string(out), "the store (-store postgres) does not hold that key"))
	is.True(strings.Contains(string(out), "remove "+filepath.Join(data, "keys-issued.json")))

	startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", data) // the right database
}

// TestRevocationReachesAnotherServer: a key revoked through server A is
// refused by server B, which had it in its read cache, in each of 200
// trials. The time from A's answer to B's first refusal is logged (p50,
// p99; BENCHMARKS.md has the figures), not asserted.
func TestRevocationReachesAnotherServer(t *testing.T) {
	is := is.New(t)
	_, _, dsn := newStore(t)
	cfg := writeConfig(t)
	dataA := t.TempDir()
	a := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", dataA, "-owner-rate-limit", "0")
	b := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", sharedDataDir(t, dataA), "-owner-rate-limit", "0")
	const trials = 200
	var took []time.Duration
	for range trials {
		status, created := a.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
		is.Equal(status, 201)
		validate := `{"licenseKey":"` + created["licenseKey"].(string) + `"}`
		status, _ = b.do(t, "POST", "/api/v1/licensing/validate", "", validate)
		is.Equal(status, 200) // B has the key in its cache
		status, _ = a.do(t, "DELETE", "/api/v1/licensing/keys/"+created["id"].(string), "owner-token", "")
		is.Equal(status, 200)
		revoked := time.Now()
		for { // polled without a pause, so that the time is B's, not the loop's
			status, _ := b.do(t, "POST", "/api/v1/licensing/validate", "", validate)
			if status == 401 {
				break
			}
			is.Equal(status, 200)
			if time.Since(revoked) > time.Minute {
				t.Fatal("B still accepts the key a minute after its revocation through A")
			}
		}
		took = append(took, time.Since(revoked))
	}
	slices.Sort(took)
	t.Logf("revocation through A refused by B after: p50 %v, p99 %v, max %v (%d trials)",
		took[len(took)/2], took[len(took)*99/100], took[len(took)-1], len(took))
}

// TestServerRefusesOtherSigningKeys: a server whose data directory holds
// signing keys other than those of the servers already on the store (it
// made its own, on another database) refuses to start, naming the files to
// copy; with -rotate-signing-keys it starts, and its keys become the
// store's, so that the first server's would now be refused.
func TestServerRefusesOtherSigningKeys(t *testing.T) {
	is := is.New(t)
	_, _, dsn := newStore(t)
	_, _, other := newStore(t)
	cfg := writeConfig(t)
	dataA, dataB := t.TempDir(), t.TempDir()
	startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", dataA)
	b := startLicensingServer(t, "-store", "postgres", "-dsn", other, "-config", cfg, "-data", dataB) // makes keys of its own
	harness.StopTB(t, b.proc)

	run := func(data string, extra ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a server that starts is killed then
		defer cancel()
		cmd := exec.CommandContext(ctx, buildServer(t), append([]string{"-addr", "127.0.0.1:0", "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", data}, extra...)...)
		cmd.Env = append(os.Environ(), "LICENSING_PEPPER="+strings.Repeat("ab", 32))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(dataB)
	is.True(err != nil) // refused
	is.True(strings.Contains(out, "not those the store records for the servers that share it"))
	is.True(strings.Contains(out, "copy "+filepath.Join(dataB, "signing-ed25519.pem")))
	startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", sharedDataDir(t, dataA)) // A's keys: starts
}

// TestSeatRaceAcrossServers: two new instances race for the last seat of a
// key, one through each of two servers on one PostgreSQL: exactly one wins
// (200), the other is refused (403), and afterwards the winner keeps
// validating while the loser stays refused on both servers. Repeated.
func TestSeatRaceAcrossServers(t *testing.T) {
	is := is.New(t)
	_, _, dsn := newStore(t)
	cfg := writeConfig(t)
	dataA := t.TempDir()
	a := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", dataA, "-owner-rate-limit", "0")
	b := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", sharedDataDir(t, dataA), "-owner-rate-limit", "0")
	for round := range 20 {
		status, created := a.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{"maxInstances": 2}`)
		is.Equal(status, 201)
		key := created["licenseKey"].(string)
		validate := func(s *server, instance string) int {
			status, _ := s.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`","instanceId":"`+instance+`"}`)
			return status
		}
		is.Equal(validate(a, "first"), 200) // one seat of two taken
		start := make(chan struct{})
		var wg sync.WaitGroup
		got := map[string]int{}
		var mu sync.Mutex
		for _, race := range []struct {
			s        *server
			instance string
		}{{a, "x"}, {b, "y"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				status := validate(race.s, race.instance)
				mu.Lock()
				got[race.instance] = status
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		winner, loser := "x", "y"
		if got["y"] == 200 {
			winner, loser = "y", "x"
		}
		if got[winner] != 200 || got[loser] != 403 {
			t.Fatalf("round %d: the race for the last seat gave %v; want one 200 and one 403", round, got)
		}
		for _, s := range []*server{a, b} {
			is.Equal(validate(s, winner), 200)  // the winner holds its seat on both servers
			is.Equal(validate(s, loser), 403)   // the loser is refused on both
			is.Equal(validate(s, "first"), 200) // and the first keeps its own
		}
	}
}
