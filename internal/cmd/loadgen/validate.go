package main

// The validation harness (-route validate): a floor server, the reference
// server on the memory store and on the file store, and (by default) the
// memory store with the request log on, all started at once and driven in
// turn, round after round, by wrk from its own process.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/licensekit/licensing/internal/harness"
)

// target is one server under load.
type target struct {
	name string
	proc *harness.Process
	url  string
	keys []string
}

// result is one wrk run against one target.
type result struct {
	reqs     float64 // per second
	p50, p99 time.Duration
	cpu      time.Duration // server CPU per request
}

type validateFlags struct {
	conns, rounds, keys int
	dur                 time.Duration
	targets             string
	profile             string
	wrk                 string
	dsn                 string // for the postgres targets
}

func runValidate(f validateFlags) error {
	wrk, err := exec.LookPath(f.wrk)
	if err != nil {
		return fmt.Errorf("this harness drives the servers with wrk (apt-get install wrk): %w", err)
	}
	w, cleanup, err := newWorkspace()
	if err != nil {
		return err
	}
	defer cleanup()
	tmp, bin, cfg, token := w.tmp, w.bin, w.cfg, ownerToken
	names := strings.Split(f.targets, ",")
	if len(names) == 0 || names[0] != "floor" {
		return errors.New("-targets must start with floor, the baseline")
	}
	var targets []*target
	defer func() {
		for _, t := range targets {
			t.proc.Stop()
		}
	}()
	var answerSize int
	hookURL := "" // the hanging webhook receiver's, once a +hooks target started it
	for i, name := range names[1:] {
		args := []string{"-addr", "127.0.0.1:0", "-config", cfg, "-data", filepath.Join(tmp, name), "-rate-limit", "0", "-owner-rate-limit", "0",
			"-max-conns-per-addr", "0"} // the load comes from one address
		store, extra, _ := strings.Cut(name, "+")
		args = append(args, "-store", store)
		serverBin := bin
		if store == "postgres" {
			if serverBin, err = postgresTarget(f.dsn, i); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			args = append(args, "-dsn", f.dsn+" search_path="+schemaName(i))
		}
		switch {
		case extra == "":
		case extra == "reqlog":
			args = append(args, "-request-log", "info")
		case extra == "nocache" && store == "postgres":
			args = append(args, "-cache-keys", "0")
		case extra == "hooks":
			if hookURL == "" {
				url, stop, err := startHangingReceiver()
				if err != nil {
					return err
				}
				defer stop()
				hookURL = url
			}
			hooked := filepath.Join(tmp, "config-hooks.json")
			if err := writeHookedConfig(hooked, token, hookURL); err != nil {
				return err
			}
			args[slices.Index(args, cfg)] = hooked
		default:
			return fmt.Errorf("target %q: want memory, file, postgres, memory+reqlog, file+reqlog, postgres+nocache or <store>+hooks", name)
		}
		cmd := exec.Command(serverBin, args...)
		if f.profile != "" {
			cmd.Env = append(os.Environ(), "LICENSING_CPU_PROFILE="+filepath.Join(f.profile, name+".pprof"))
		}
		t, err := startTarget(name, cmd)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		targets = append(targets, t)
		client := &http.Client{Timeout: 10 * time.Second}
		for i := 0; i < f.keys; i++ {
			k, err := create(client, t.url, token)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			t.keys = append(t.keys, k)
		}
		// Each key's first validation seats its instance, a write made once
		// per instance: made here, so that the rounds measure validation.
		for i, k := range t.keys {
			if _, err := answerLength(client, t.url, body(k, i+1)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		n, err := answerLength(client, t.url, body(t.keys[0], 1))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		answerSize = n
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	floor, err := startTarget("floor", exec.Command(self, "-serve-floor", "-answer-size", strconv.Itoa(answerSize)))
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	floor.keys = targets[0].keys
	targets = append([]*target{floor}, targets...)
	if n, err := answerLength(http.DefaultClient, floor.url, body(floor.keys[0], 1)); err != nil || n != answerSize {
		return fmt.Errorf("floor answers %d bytes (%v), the servers %d", n, err, answerSize)
	}

	fmt.Printf("validate: wrk -t1 -c%d -d%s, %d keys per server, %d rounds, answer %d bytes\n",
		f.conns, f.dur, f.keys, f.rounds, answerSize)
	fmt.Printf("%-5s %-14s %9s %9s %9s %10s %7s %9s\n", "round", "target", "req/s", "p50", "p99", "cpu/req", "ratio", "p99 ratio")
	all := map[string][]result{}
	for round := 1; round <= f.rounds; round++ {
		// rotate the order, so no target always runs first or last
		order := append(slices.Clone(targets[round%len(targets):]), targets[:round%len(targets)]...)
		got := map[string]result{}
		for _, t := range order {
			r, err := drive(wrk, tmp, t, f.conns, f.dur)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round, t.name, err)
			}
			got[t.name] = r
			all[t.name] = append(all[t.name], r)
		}
		base := got["floor"]
		for _, t := range targets {
			r := got[t.name]
			fmt.Printf("%-5d %-14s %9.0f %9s %9s %10s %7.2f %9.2f\n", round, t.name, r.reqs, r.p50, r.p99, r.cpu,
				r.reqs/base.reqs, float64(r.p99)/float64(base.p99))
		}
	}
	fmt.Println("median over rounds of each round's ratio to the floor:")
	for _, t := range targets[1:] {
		var ratios, p99s, cpus []float64
		for i, r := range all[t.name] {
			b := all["floor"][i]
			ratios = append(ratios, r.reqs/b.reqs)
			p99s = append(p99s, float64(r.p99)/float64(b.p99))
			cpus = append(cpus, float64(r.cpu)/float64(b.cpu))
		}
		fmt.Printf("  %-14s throughput %.2f  p99 %.2fx  cpu/req %.2fx\n", t.name, median(ratios), median(p99s), median(cpus))
	}
	for _, t := range targets {
		t.proc.Stop() // SIGTERM: profiles are written at shutdown
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// body is the request: the key, an instance name and URL.
// body is the validate request of key, the i-th of its server (from 1, as
// in wrkScript).
func body(key string, i int) string {
	return fmt.Sprintf(`{"licenseKey":%q,"instanceName":"load-%d","instanceUrl":"https://load-%d.example"}`, key, i, i)
}

func writeConfig(path, token string) error {
	sum := sha256Hex(token)
	return os.WriteFile(path, []byte(`{"plans":{"business":{"selfHostingLicense":true,"maxCompanies":10,"maxUsersPerOrg":0}},
"requiredFeature":"selfHostingLicense","billingUrl":"https://billing.example/upgrade",
"organizations":[{"id":"org-1","name":"Load","ownerId":"u","plan":"business","active":true,"currentPeriodEnd":"2030-01-01T00:00:00Z"}],
"tokens":[{"sha256":"`+sum+`","userId":"u"}]}`), 0o600)
}

// startTarget starts cmd and waits for the address it listens on.
func startTarget(name string, cmd *exec.Cmd) (*target, error) {
	p, err := harness.Start(cmd, harness.Config{DropLogAfterListen: true}) // a request log would grow for the whole run
	if err != nil {
		return nil, err
	}
	return &target{name: name, proc: p, url: p.URL}, nil
}

func answerLength(client *http.Client, url, b string) (int, error) {
	res, err := client.Post(url+"/api/v1/licensing/validate", "application/json", strings.NewReader(b))
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("validate: %d %s", res.StatusCode, raw)
	}
	return len(raw), err
}

// wrkScript cycles through the keys of the file it names (one a line), each
// with its own instance name and URL.
const wrkScript = `
local bodies = {}
local i = 0
for k in io.lines(%q) do
  i = i + 1
  bodies[i] = '{"licenseKey":"' .. k .. '","instanceName":"load-' .. i .. '","instanceUrl":"https://load-' .. i .. '.example"}'
end
local headers = {["Content-Type"] = "application/json"}
local n = 0
request = function()
  n = n %% #bodies + 1
  return wrk.format("POST", "/api/v1/licensing/validate", headers, bodies[n])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
`

var resultLine = regexp.MustCompile(`RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)`)

// drive runs wrk against t, cycling through its keys, and reads the
// server's CPU time around it.
func drive(wrk, tmp string, t *target, conns int, dur time.Duration) (result, error) {
	keysFile := filepath.Join(tmp, t.name+".keys")
	if err := os.WriteFile(keysFile, []byte(strings.Join(t.keys, "\n")+"\n"), 0o600); err != nil {
		return result{}, err
	}
	script := filepath.Join(tmp, t.name+".lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(wrkScript, keysFile)), 0o600); err != nil {
		return result{}, err
	}
	return runWrk(wrk, script, t, conns, dur)
}

// runWrk runs wrk with script against t and reads the server's CPU time
// around it.
func runWrk(wrk, script string, t *target, conns int, dur time.Duration) (result, error) {
	cpu0, err := cpuTime(t.proc.Cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	out, err := exec.Command(wrk, "-t1", "-c"+strconv.Itoa(conns), "-d"+dur.String(), "-s", script, t.url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	cpu1, err := cpuTime(t.proc.Cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	m := resultLine.FindStringSubmatch(string(out))
	if m == nil {
		return result{}, fmt.Errorf("wrk printed no result:\n%s", out)
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(m[i], 10, 64); return v }
	if n(5) > 0 || n(6) > 0 {
		return result{}, fmt.Errorf("%d answers were not 2xx, %d socket errors", n(5), n(6))
	}
	reqs, micros := n(1), n(2)
	if reqs == 0 {
		return result{}, errors.New("no requests completed")
	}
	return result{
		reqs: float64(reqs) / (float64(micros) / 1e6),
		p50:  time.Duration(n(3)) * time.Microsecond,
		p99:  time.Duration(n(4)) * time.Microsecond,
		cpu:  (cpu1 - cpu0) / time.Duration(reqs),
	}, nil
}

// cpuTime is the user plus system CPU time of process pid, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// the command name (field 2) is in parentheses and may hold spaces
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * tick, nil
}

// serveFloor is the floor: net/http, with the reference server's timeouts,
// reading the body with the same decode as the server's validate route and
// writing an answer of answerSize bytes with the same headers. It prints its
// address on stderr.
func serveFloor(answerSize int) error {
	answer := []byte(`{"valid":true,"plan":"`)
	tail := []byte(`","features":{"maxCompanies":10,"selfHostingLicense":true},"organizationId":"org-1","organizationName":"Load","violations":[],"billingUrl":""}` + "\n")
	if pad := answerSize - len(answer) - len(tail); pad > 0 {
		answer = append(answer, strings.Repeat("b", pad)...)
	}
	answer = append(answer, tail...)
	type request struct {
		LicenseKey   string             `json:"licenseKey"`
		InstanceName string             `json:"instanceName"`
		InstanceURL  string             `json:"instanceUrl"`
		InstanceID   string             `json:"instanceId"`
		Metrics      map[string]float64 `json:"metrics"`
		Nonce        string             `json:"nonce"`
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		var req request
		if err == nil {
			err = json.Unmarshal(raw, &req)
		}
		if err != nil || req.LicenseKey == "" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		hdr := w.Header()
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("X-Content-Type-Options", "nosniff")
		w.Write(answer)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "floor listening on", ln.Addr())
	// The reference server's transport settings, so the floor differs from
	// it only by what the library does.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10}
	return srv.Serve(ln)
}

func floorFlags(fs *flag.FlagSet) (serve *bool, size *int) {
	return fs.Bool("serve-floor", false, "run as the floor server (used by -route validate)"),
		fs.Int("answer-size", 200, "with -serve-floor: bytes of the answer")
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// schemaName is the PostgreSQL schema of the i-th target.
func schemaName(i int) string { return fmt.Sprintf("loadgen_%d", i) }

// postgresTarget makes an empty schema for the i-th target in the database
// of dsn (with psql) and returns the PostgreSQL server's binary.
func postgresTarget(dsn string, i int) (string, error) {
	if dsn == "" {
		return "", errors.New("a postgres target needs -dsn, a keyword/value connection string (host=... dbname=...) of a database loadgen may make schemas in")
	}
	sql := fmt.Sprintf("DROP SCHEMA IF EXISTS %[1]s CASCADE; CREATE SCHEMA %[1]s", schemaName(i))
	if out, err := exec.Command("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql).CombinedOutput(); err != nil {
		return "", fmt.Errorf("psql: %w\n%s", err, out)
	}
	return harness.Build(harness.PostgresServerCmd)
}
