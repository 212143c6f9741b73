package pgstore_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// startNginx runs Debian's nginx in the foreground on a free loopback port,
// with a generated configuration that balances requests over upstreams in
// turn (round robin) and tells which one answered in X-Upstream; it is
// stopped when the test ends. It returns the proxy's URL.
func startNginx(t *testing.T, upstreams ...string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/sbin/nginx"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		t.Fatal("nginx not found: install Debian's nginx (apt-get install nginx-light)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	var servers strings.Builder
	for _, u := range upstreams {
		fmt.Fprintf(&servers, "    server %s;\n", strings.TrimPrefix(u, "http://"))
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers keep access to the temporary directory
	}
	conf := fmt.Sprintf(`%[1]s
daemon off;
master_process on;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  upstream licensing {
%[3]s    keepalive 8;
  }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://licensing;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      add_header X-Upstream $upstream_addr always;
    }
  }
}
`, user, dir, servers.String(), addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // fast shutdown
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	url := "http://" + addr
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		res, err := http.Get(url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return url
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not answer on %s: %v\n%s", addr, err, log)
		}
	}
}

// viaProxy sends one request through the proxy and returns its status, its
// JSON body and the upstream that answered.
func viaProxy(t *testing.T, proxy, method, path, token, body string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, proxy+path, strings.NewReader(body))
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
	return res.StatusCode, m, res.Header.Get("X-Upstream")
}

// TestTwoServersBehindNginx: two licensing-server-pg on one PostgreSQL
// behind Debian's nginx, which sends requests to each in turn. A key made
// through one validates and is revoked through the other; instances that
// validate through either are counted once, on the key: two of a key with
// maxInstances 2 are listed by each server and the key is told it is
// shared by 2 instances, a third is refused
// through both servers, and after a revocation every server refuses.
func TestTwoServersBehindNginx(t *testing.T) {
	is := is.New(t)
	_, _, dsn := newStore(t)
	cfg := writeConfig(t)
	dataA := t.TempDir()
	a := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", dataA, "-owner-rate-limit", "0")
	b := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", cfg, "-data", sharedDataDir(t, dataA), "-owner-rate-limit", "0")
	proxy := startNginx(t, a.url, b.url)

	status, created, creator := viaProxy(t, proxy, "POST", "/api/v1/licensing/keys", "owner-token", `{"maxInstances": 2}`)
	is.Equal(status, 201)
	id, key := created["id"].(string), created["licenseKey"].(string)
	validate := func(instance string) (int, map[string]any, string) {
		return viaProxy(t, proxy, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`","instanceId":"`+instance+`"}`)
	}
	// Validated through the server that did not make it (nginx takes them in turn).
	var by string
	for status, _, by = validate("one"); by == creator; status, _, by = validate("one") {
		is.Equal(status, 200)
	}
	is.Equal(status, 200)
	upstreams := map[string]bool{}
	for range 4 { // the second instance, through both servers
		status, _, by := validate("two")
		is.Equal(status, 200)
		upstreams[by] = true
	}
	for range 2 { // each server lists the two instances, once each
		status, body, _ := viaProxy(t, proxy, "GET", "/api/v1/licensing/keys/"+id+"/instances", "owner-token", "")
		is.Equal(status, 200)
		var ids []string
		for _, in := range body["instances"].([]any) {
			ids = append(ids, in.(map[string]any)["id"].(string))
		}
		slices.Sort(ids)
		is.Equal(ids, []string{"one", "two"})
	}
	waitFor(t, "the key to be told shared by 2 instances", func() bool { // once its validations are recorded
		status, body, _ := viaProxy(t, proxy, "GET", "/api/v1/licensing/keys", "owner-token", "")
		is.Equal(status, 200)
		for _, k := range body["keys"].([]any) {
			if k := k.(map[string]any); k["id"] == id {
				return strings.Contains(fmt.Sprint(k["lastViolations"]), "shared by 2 instances")
			}
		}
		return false
	})
	for range 4 {
		status, body, by := validate("three")
		is.Equal(status, 403) // the seats are counted on the key, not per server
		is.True(strings.Contains(fmt.Sprint(body["error"]), "maximum number of instances (2)"))
		upstreams[by] = true
	}
	is.Equal(len(upstreams), 2) // both servers answered

	status, _, revoker := viaProxy(t, proxy, "DELETE", "/api/v1/licensing/keys/"+id, "owner-token", "")
	is.Equal(status, 200)
	t.Logf("made through %s, revoked through %s", creator, revoker)
	refused := map[string]bool{}
	waitFor(t, "both servers to refuse the revoked key", func() bool {
		status, _, by := validate("one")
		if status == 401 {
			refused[by] = true
		}
		return len(refused) == 2
	})
}
