package pgstore_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/matryer/is"

	"github.com/licensekit/licensing/pgstore/internal/pgtest"
)

// outageLoad drives a server with validations and creates until stop is
// closed, keeping the ids of acknowledged creates and every status seen.
type outageLoad struct {
	mu       sync.Mutex
	created  []string
	statuses map[string]map[int]int // "create" or "validate" -> status -> count
	failures []string               // answers that are neither success nor 503, and transport errors
}

func (l *outageLoad) note(route string, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.statuses[route] == nil {
		l.statuses[route] = map[int]int{}
	}
	l.statuses[route][status]++
}

func (l *outageLoad) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 20 {
		l.failures = append(l.failures, msg)
	}
}

// post sends one request and returns its status and body; a transport
// error (the server died, or hangs past the client's timeout) is a failure.
func post(client *http.Client, url, token, body string) (int, string, error) {
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

func (l *outageLoad) run(s *server, key string, stop <-chan struct{}, wg *sync.WaitGroup) {
	client := &http.Client{Timeout: 30 * time.Second}
	for i := 0; i < 4; i++ { // validators
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, body, err := post(client, s.url+"/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
				switch {
				case err != nil:
					l.fail("validate: " + err.Error())
				case status != 200 && status != 503:
					l.fail("validate: " + body)
				}
				l.note("validate", status)
			}
		}()
	}
	wg.Add(1)
	go func() { // one creator, a create every 20 ms
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			status, body, err := post(client, s.url+"/api/v1/licensing/keys", "owner-token", `{}`)
			switch {
			case err != nil:
				l.fail("create: " + err.Error())
			case status == 201:
				l.mu.Lock()
				l.created = append(l.created, body[strings.Index(body, `"id":"`)+6:][:36])
				l.mu.Unlock()
			case status != 503:
				l.fail("create: " + body)
			}
			l.note("create", status)
		}
	}()
}

// TestPostgresOutage stops PostgreSQL for 10 seconds under load (pg_ctl
// stop, then start) around a running licensing-server-pg: meanwhile owner
// writes and validations answer 503 (the documented rule: the cache is
// bypassed while its listener is down, and PostgreSQL is down), /readyz
// answers 503 naming the store, and the server never crashes or answers
// anything else; once PostgreSQL is back the server serves again without a
// restart, its listener is back (a revocation made behind its back is
// seen), and every create that was acknowledged is in the store. The time
// from PostgreSQL's return to normal service is logged, not asserted.
func TestPostgresOutage(t *testing.T) {
	is := is.New(t)
	pg := pgtest.Start(t) // its own PostgreSQL: the other tests' keeps running
	t.Cleanup(pg.Stop)
	dsn := pg.NewSchema(t)
	s := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", writeConfig(t), "-data", t.TempDir(), "-owner-rate-limit", "0")
	status, created := s.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
	is.Equal(status, 201)
	key := created["licenseKey"].(string)
	ready := func() (int, string) {
		res, err := http.Get(s.url + "/readyz")
		is.NoErr(err) // the server answers
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	waitFor(t, "/readyz to answer 200", func() bool { st, _ := ready(); return st == 200 })

	load := &outageLoad{statuses: map[string]map[int]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	load.run(s, key, stop, &wg)
	time.Sleep(time.Second) // load before the outage

	pg.Halt(t)
	halted := time.Now()
	waitFor(t, "/readyz to answer 503", func() bool { st, _ := ready(); return st == 503 })
	_, body := ready()
	is.True(strings.Contains(body, "store unreachable")) // the reason
	status, answer := s.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
	is.Equal(status, 503) // owner writes
	is.Equal(answer["error"], "The license store is unavailable; retry shortly.")
	status, answer = s.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 503) // validation: refused, not answered from the cache
	is.Equal(answer["error"], "The license store is unavailable; retry shortly.")
	time.Sleep(10*time.Second - time.Since(halted))

	pg.Resume(t)
	back := time.Now()
	waitFor(t, "/readyz to answer 200 again", func() bool { st, _ := ready(); return st == 200 })
	readyAfter := time.Since(back)
	var validAfter, createAfter time.Duration
	waitFor(t, "validation to succeed again", func() bool {
		st, _ := s.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
		validAfter = time.Since(back)
		return st == 200
	})
	waitFor(t, "a create to succeed again", func() bool {
		st, _ := s.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
		createAfter = time.Since(back)
		return st == 201
	})
	time.Sleep(time.Second) // load after the outage
	close(stop)
	wg.Wait()
	t.Logf("after PostgreSQL's return: /readyz 200 after %v, a validation after %v, a create after %v; answers under load: %v",
		readyAfter, validAfter, createAfter, load.statuses)
	is.Equal(load.failures, nil)                // only successes and 503s, and no crash
	is.True(load.statuses["validate"][503] > 0) // the outage was seen under load
	is.True(load.statuses["validate"][200] > 0)

	// Every acknowledged create is in the store.
	listed := map[string]bool{}
	for _, id := range listIDs(t, s) {
		listed[id] = true
	}
	for _, id := range load.created {
		is.True(listed[id]) // acknowledged, so kept
	}

	// The listener is back: a revocation made behind the server's back
	// (plain SQL, as another server) reaches its cache.
	pool, err := pgxpool.New(context.Background(), dsn)
	is.NoErr(err)
	defer pool.Close()
	_, err = pool.Exec(context.Background(), `UPDATE licensing_keys SET active = false, revoked_at = now() WHERE id = $1`, created["id"])
	is.NoErr(err)
	waitFor(t, "the revocation to reach the server", func() bool {
		st, _ := s.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
		return st == 401
	})
}

// TestPostgresOutageEveryRoute: while PostgreSQL is stopped, /readyz
// answers 503 with the reason, and every route that reads or writes the
// store answers 503 with the store's message (never 500, never an answer
// about the key such as 401 not found), for a known instance or a new one;
// with the read cache and without it (-cache-keys 0), where /readyz
// answered 200 all along: only the cache's listener told it of the outage.
func TestPostgresOutageEveryRoute(t *testing.T) {
	pg := pgtest.Start(t)
	t.Cleanup(pg.Stop)
	for _, cacheKeys := range []string{"100", "0"} {
		t.Run("cache-keys="+cacheKeys, func(t *testing.T) {
			outageEveryRoute(t, pg, cacheKeys)
		})
	}
}

func outageEveryRoute(t *testing.T, pg *pgtest.Server, cacheKeys string) {
	is := is.New(t)
	dsn := pg.NewSchema(t)
	s := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", writeConfig(t), "-data", t.TempDir(), "-owner-rate-limit", "0",
		"-cache-keys", cacheKeys)
	status, created := s.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{"maxInstances": 3}`)
	is.Equal(status, 201)
	key, id := created["licenseKey"].(string), created["id"].(string)
	waitFor(t, "/readyz to answer 200", func() bool {
		res, err := http.Get(s.url + "/readyz")
		is.NoErr(err)
		res.Body.Close()
		return res.StatusCode == 200
	})
	status, _ = s.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`","instanceId":"known"}`)
	is.Equal(status, 200) // cached, and "known" holds a seat

	pg.Halt(t)
	defer pg.Resume(t)
	waitFor(t, "/readyz to answer 503", func() bool {
		res, err := http.Get(s.url + "/readyz")
		is.NoErr(err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode == 503 && strings.Contains(string(b), "store unreachable") // and the reason
	})
	later := time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)
	for _, r := range []struct{ method, path, token, body string }{
		{"POST", "/keys", "owner-token", `{}`},
		{"GET", "/keys", "owner-token", ""},
		{"PATCH", "/keys/" + id, "owner-token", `{"expiresAt":"` + later + `"}`},
		{"PATCH", "/keys/" + id, "owner-token", `{"maxInstances": 5}`},
		{"POST", "/keys/" + id + "/rotate", "owner-token", `{}`},
		{"POST", "/keys/" + id + "/jwt", "owner-token", `{}`},
		{"GET", "/keys/" + id + "/instances", "owner-token", ""},
		{"DELETE", "/keys/" + id + "/instances/known", "owner-token", ""},
		{"GET", "/events", "owner-token", ""},
		{"GET", "/revocations?org=org-1&nonce=abcdefghabcdefgh", "", ""},
		{"POST", "/validate", "", `{"licenseKey":"` + key + `"}`},
		{"POST", "/validate", "", `{"licenseKey":"` + key + `","instanceId":"known"}`},
		{"POST", "/validate", "", `{"licenseKey":"` + key + `","instanceId":"new"}`},
		{"POST", "/validate", "", `{"licenseKey":"` + key + `","instanceUrl":"https://new.example.com"}`},
		{"DELETE", "/keys/" + id, "owner-token", ""},
	} {
		status, answer := s.do(t, r.method, "/api/v1/licensing"+r.path, r.token, r.body)
		if status != 503 || answer["error"] != "The license store is unavailable; retry shortly." {
			t.Errorf("%s %s %s: %d %v, want 503 and the store's message", r.method, r.path, r.body, status, answer)
		}
	}
}

// TestPostgresFrozen: PostgreSQL stops answering without closing a
// connection (every process stopped: a hang, or a network that drops
// packets): validation answers 503 within a bound instead of waiting for
// ever, for a key read before and one never read, /readyz answers 503, and
// once PostgreSQL answers again so does the server. Before, every
// validation of a key not in the cache waited until the client gave up.
func TestPostgresFrozen(t *testing.T) {
	is := is.New(t)
	pg := pgtest.Start(t)
	t.Cleanup(pg.Stop)
	dsn := pg.NewSchema(t)
	s := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", writeConfig(t), "-data", t.TempDir(), "-owner-rate-limit", "0")
	var keys []string
	for range 2 {
		status, created := s.do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
		is.Equal(status, 201)
		keys = append(keys, created["licenseKey"].(string))
	}
	client := &http.Client{Timeout: time.Minute} // longer than any bound the server may keep
	validate := func(key string) int {
		status, _, err := post(client, s.url+"/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
		is.NoErr(err) // answered, not left waiting
		return status
	}
	waitFor(t, "the first key to validate (and be cached)", func() bool { return validate(keys[0]) == 200 })

	thaw := pg.Freeze(t)
	defer thaw()
	is.Equal(validate(keys[1]), 503) // never read: PostgreSQL does not answer
	waitFor(t, "the cached key to be refused too", func() bool { return validate(keys[0]) == 503 })
	waitFor(t, "/readyz to answer 503", func() bool {
		res, err := http.Get(s.url + "/readyz")
		is.NoErr(err)
		res.Body.Close()
		return res.StatusCode == 503
	})
	thaw()
	waitFor(t, "validation to succeed again", func() bool { return validate(keys[1]) == 200 && validate(keys[0]) == 200 })
}
