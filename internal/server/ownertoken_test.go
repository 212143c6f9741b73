package server_test

import (
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

var ownerTokenLine = regexp.MustCompile(`^owner token: (lk_[0-9a-f]{64})\n$`)

// ownerTokenCmd runs licensing-server owner-token with args and returns its
// exit code, stdout and stderr.
func ownerTokenCmd(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(serverBin, append([]string{"owner-token"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// TestOwnerTokenReplacesALostDemoToken: with the server stopped,
// owner-token prints a new owner token for the demo organization; after a
// restart the old token is refused, the new one manages the same keys, and
// the keys still validate.
func TestOwnerTokenReplacesALostDemoToken(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	p := start(t, nil, "-data", data)
	old := ownerToken(p.logs.String())
	is.True(old != "")
	status, body, _ := p.do(t, "POST", "/api/v1/licensing/keys", old, `{"instanceName":"kept"}`)
	is.Equal(status, 201)
	id, key := body["id"].(string), body["licenseKey"].(string)

	code, _, stderr := ownerTokenCmd(t, nil, "-data", data)
	is.Equal(code, 1) // refused while the server runs
	is.True(strings.Contains(stderr, "running"))
	is.True(strings.Contains(stderr, "stop it"))
	p.stop(t)

	code, stdout, stderr := ownerTokenCmd(t, nil, "-data", data)
	is.Equal(code, 0)
	is.Equal(stderr, "")
	m := ownerTokenLine.FindStringSubmatch(stdout)
	is.True(m != nil) // one line: owner token: lk_<64 hex>
	fresh := m[1]
	is.True(fresh != old)
	fi, err := os.Stat(filepath.Join(data, "demo.json"))
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600))

	p = start(t, nil, "-data", data)
	is.True(!strings.Contains(p.logs.String(), "owner token")) // the server prints no other token
	status, _, _ = p.do(t, "GET", "/api/v1/licensing/keys", old, "")
	is.Equal(status, 401) // the lost token no longer works
	status, _, raw := p.do(t, "GET", "/api/v1/licensing/keys", fresh, "")
	is.Equal(status, 200)                    // the new one does
	is.True(strings.Contains(raw, id))       // on the same keys
	is.True(!strings.Contains(raw, key[3:])) // listed without the key itself
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 200) // which still validate
}

// TestOwnerTokenRefusals: owner-token refuses, naming what to do, where it
// has no demo token to replace.
func TestOwnerTokenRefusals(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.json")
	writeConfig(t, cfg, "business")
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want []string
	}{
		{"a config file holds the owners", nil, []string{"-data", empty, "-config", cfg}, 1, []string{cfg, "tokens", "SHA-256", "SIGHUP"}},
		{"the config file from the environment", []string{"LICENSING_CONFIG=" + cfg}, []string{"-data", empty}, 1, []string{cfg, "tokens"}},
		{"no demo organization", nil, []string{"-data", empty}, 1, []string{"no demo.json", "without -config"}},
		{"no data directory", nil, []string{"-data", filepath.Join(dir, "typo")}, 1, []string{"typo", "no such file", "-data"}},
		{"stray argument", nil, []string{"-data", empty, "now"}, 2, []string{`unexpected argument "now"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			code, stdout, stderr := ownerTokenCmd(t, tc.env, tc.args...)
			is.Equal(code, tc.code)
			is.Equal(stdout, "") // no token
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Fatalf("%q is not in:\n%s", w, stderr)
				}
			}
			_, err := os.Stat(filepath.Join(empty, "demo.json"))
			is.True(os.IsNotExist(err)) // nothing made
		})
	}
}

// TestBinaryConcurrentGuesses: the real binary, one client address, 300
// wrong bearer tokens sent at once over many connections: exactly the burst
// of the default -owner-rate-limit (120 a minute: 30) is tried, the rest
// get 429.
func TestBinaryConcurrentGuesses(t *testing.T) {
	is := is.New(t)
	p, _ := contractServer(t, "-max-conns-per-addr", "0") // 300 connections from one address: the token limiter, not the connection cap, is under test
	tr := &http.Transport{MaxIdleConnsPerHost: 300, MaxConnsPerHost: 300}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var tried, limited atomic.Int32
	start := make(chan struct{})
	for i := range 300 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", p.url+"/api/v1/licensing/keys", nil)
			req.Header.Set("Authorization", "Bearer guess-"+strconv.Itoa(i))
			<-start
			res, err := client.Do(req)
			if err != nil {
				return
			}
			res.Body.Close()
			switch res.StatusCode {
			case 401:
				tried.Add(1)
			case 429:
				limited.Add(1)
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	refilled := int32(math.Ceil(time.Since(began).Seconds() * 2)) // 120 a minute: 2 tokens a second while the wave ran
	t.Logf("401 (token tried) %d, 429 %d, in %v", tried.Load(), limited.Load(), time.Since(began))
	is.True(tried.Load() <= 30+refilled) // the burst of -owner-rate-limit 120, and what refilled meanwhile
	is.True(limited.Load() > 0)
}

// TestOwnerTokenKeepsTheOwnershipRule: owner-token writes demo.json, which
// the server takes only from its own user (datadir.go). Run as another
// user (sudo, as root) on the server's data directory, it would leave a
// demo.json the next start refuses; on a directory or demo.json another
// user owns, it would hand out a token for what that user planted. Both
// are refused, naming the path and the user to run it as, and demo.json
// is left as it was.
func TestOwnerTokenKeepsTheOwnershipRule(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, data string)
		want  string
	}{
		{"run as root on the data directory of another user", func(t *testing.T, data string) {
			entries, err := os.ReadDir(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				mustChown(t, filepath.Join(data, e.Name()), nobody)
			}
			mustChown(t, data, nobody)
		}, "is owned by uid 65534, not by the user running owner-token (uid 0): the server runs as its owner; run owner-token as that user"},
		{"demo.json planted by another user", func(t *testing.T, data string) {
			mustChown(t, filepath.Join(data, "demo.json"), nobody)
		}, "demo.json is owned by uid 65534"},
		{".lock a symbolic link another user made", func(t *testing.T, data string) {
			if err := os.Remove(filepath.Join(data, ".lock")); err != nil {
				t.Fatal(err)
			}
			mustSymlinkAs(t, data+"-planted", filepath.Join(data, ".lock"), nobody)
			t.Cleanup(func() {
				if _, err := os.Lstat(data + "-planted"); !os.IsNotExist(err) {
					t.Errorf("the lock's link was followed: its target was created (%v)", err)
				}
			})
		}, ".lock is a symbolic link"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			data := filepath.Join(t.TempDir(), "data")
			start(t, nil, "-data", data).stop(t)
			tc.setup(t, data)
			before, err := os.ReadFile(filepath.Join(data, "demo.json"))
			is.NoErr(err)
			code, stdout, stderr := ownerTokenCmd(t, nil, "-data", data)
			t.Log(stderr)
			is.Equal(code, 1)
			is.Equal(stdout, "")                       // no token
			is.True(strings.Contains(stderr, tc.want)) // names the path and who may run it
			after, err := os.ReadFile(filepath.Join(data, "demo.json"))
			is.NoErr(err)
			is.Equal(string(after), string(before)) // demo.json left as it was
		})
	}
}
