package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/harness"
	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// inproc is a server.Main running in the test's process.
type inproc struct {
	url    string
	reload chan os.Signal
	logs   *harness.Buffer
	client *http.Client
	cancel context.CancelFunc // SIGTERM
	done   chan error         // Run's result, once it returns
}

// stop is SIGTERM, and waits until Run has returned (the data directory's
// lock is released).
func (p *inproc) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop")
	}
}

// runMain runs m until the test ends and waits until it listens.
func runMain(t *testing.T, m *server.Main) *inproc {
	t.Helper()
	p := &inproc{reload: make(chan os.Signal, 1), logs: &harness.Buffer{}, client: &http.Client{Timeout: 10 * time.Second}}
	m.Addr, m.Stderr = "127.0.0.1:0", p.logs
	if m.Getenv == nil {
		m.Getenv = func(string) string { return "" }
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	done := make(chan error, 1)
	p.done = done
	go func() { done <- m.Run(ctx, p.reload) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			done <- err
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	})
	scheme := "http://"
	if m.TLSCert != "" {
		scheme = "https://"
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if addr, ok := harness.ListenAddr(p.logs.String()); ok {
			p.url = scheme + addr
			return p
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v\n%s", err, p.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("server did not start:\n%s", p.logs.String())
	return nil
}

func (p *inproc) do(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// create makes a key for org-1 and returns its id and full key.
func (p *inproc) create(t *testing.T) (string, string) {
	t.Helper()
	status, raw := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{"instanceName":"x"}`)
	if status != 201 {
		t.Fatalf("create: %d %s", status, raw)
	}
	return field(raw, "id"), field(raw, "licenseKey")
}

// field returns a string field of a flat JSON object.
func field(raw, name string) string {
	i := strings.Index(raw, `"`+name+`":"`)
	if i < 0 {
		return ""
	}
	rest := raw[i+len(name)+4:]
	return rest[:strings.IndexByte(rest, '"')]
}

// scrape reads /metrics, checks it with promtool when it is installed (in
// CI it must be; TestMetrics skips without it), and returns each series' value by its line's name and labels.
func (p *inproc) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	status, raw := p.do(t, "GET", "/metrics", "", "")
	if status != 200 {
		t.Fatalf("/metrics: %d", status)
	}
	promtool(t, raw)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: bad value in %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func promtool(t *testing.T, exposition string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is missing (apt-get install prometheus)")
		}
		t.Log("promtool missing: exposition not linted")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- exposition:\n%s", err, out, exposition)
	}
}

func configured(t *testing.T) (cfgPath, dataDir string) {
	dir := t.TempDir()
	cfgPath = filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	return cfgPath, filepath.Join(dir, "data")
}

// faultyStore is a memory store whose writes fail while failing is set,
// with a failed state (Err) as the file store has one.
type faultyStore struct {
	*licensing.MemoryStore
	failing atomic.Bool
}

var _ licensing.Store = (*faultyStore)(nil)

var errInjected = errors.New("injected write failure")

func (s *faultyStore) Err() error {
	if s.failing.Load() {
		return errInjected
	}
	return nil
}

func (s *faultyStore) CreateKey(ctx context.Context, k licensing.Key) error {
	if err := s.Err(); err != nil {
		return err
	}
	return s.MemoryStore.CreateKey(ctx, k)
}

func (s *faultyStore) RevokeKey(ctx context.Context, id string, at time.Time) (licensing.Key, error) {
	if err := s.Err(); err != nil {
		return licensing.Key{}, err
	}
	return s.MemoryStore.RevokeKey(ctx, id, at)
}

// TestReadyz: /readyz turns 503 with the reason while the store fails its
// writes and back to 200 after recovery; /healthz stays 200 throughout.
func TestReadyz(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	store := &faultyStore{MemoryStore: licensing.NewMemoryStore()}
	m := &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "faulty", RateBurst: 1, TokenLifetime: time.Hour,
		Stores: map[string]func(context.Context) (licensing.Store, io.Closer, error){
			"faulty": func(context.Context) (licensing.Store, io.Closer, error) { return store, nil, nil },
		}}
	p := runMain(t, m)

	steps := []struct {
		name      string
		failing   bool
		create    int
		readyz    int
		reason    string
		failedGge float64
	}{
		{"healthy", false, 201, 200, "", 0},
		{"failing", true, 500, 503, "store failed", 1},
		{"recovered", false, 201, 200, "", 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			is := is.New(t)
			store.failing.Store(st.failing)
			status, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{"instanceName":"x"}`)
			is.True(status == st.create || (st.failing && status >= 500)) // the write's answer
			status, raw := p.do(t, "GET", "/readyz", "", "")
			is.Equal(status, st.readyz)
			if st.reason != "" {
				is.True(strings.Contains(raw, st.reason))            // the reason is given
				is.True(!strings.Contains(raw, errInjected.Error())) // not the cause itself
			} else {
				is.Equal(raw, `{"status":"ready"}`+"\n")
			}
			status, _ = p.do(t, "GET", "/healthz", "", "")
			is.Equal(status, 200) // liveness does not follow the store
			is.Equal(p.scrape(t)["licensing_store_failed"], st.failedGge)
		})
	}
	is.Equal(p.scrape(t)[`licensing_store_write_errors_total{op="create_key"}`], 1.0)
}

// TestReadyzDraining: after SIGTERM with -shutdown-delay, the server keeps
// serving while /readyz answers 503 "shutting down" and /healthz 200.
func TestReadyzDraining(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", RateBurst: 1,
		TokenLifetime: time.Hour, ShutdownDelay: 5 * time.Second})
	status, _ := p.do(t, "GET", "/readyz", "", "")
	is.Equal(status, 200)
	p.cancel()
	for {
		res, err := p.client.Get(p.url + "/readyz")
		if err != nil {
			t.Fatalf("the server stopped before /readyz answered 503: %v", err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 503 {
			is.Equal(string(raw), `{"status":"not ready","reason":"shutting down"}`+"\n")
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	status, _ = p.do(t, "GET", "/healthz", "", "")
	is.Equal(status, 200) // still alive while draining
}
