package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/harness"
	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// hookedConfig writes writeConfig's configuration (org-1 on business) with
// webhooks (a JSON array) and webhookDelivery (a JSON object) added, and
// returns its path and a data directory.
func hookedConfig(t *testing.T, hooks, delivery string) (cfgPath, dataDir string) {
	t.Helper()
	cfgPath, dataDir = configured(t)
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.TrimSuffix(strings.TrimSpace(string(b)), "}") + `, "webhooks": ` + hooks + `, "webhookDelivery": ` + delivery + "}\n"
	if err := os.WriteFile(cfgPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dataDir
}

// nextResult waits for the receiver's next delivery.
func nextResult(t *testing.T, rcv *harness.WebhookReceiver) harness.WebhookResult {
	t.Helper()
	select {
	case r := <-rcv.Results:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("no webhook delivery within 60 s")
		return harness.WebhookResult{}
	}
}

// TestWebhooksVerifiedByStandardWebhooks: the running server's deliveries
// are verified by the Standard Webhooks project's own library (npm's
// standardwebhooks, in a Node receiver), which refuses each of them with a
// tampered body and ten minutes later (an old timestamp).
func TestWebhooksVerifiedByStandardWebhooks(t *testing.T) {
	is := is.New(t)
	rcv := harness.StartWebhookReceiverTB(t, hookSecret, 0)
	cfgPath, data := hookedConfig(t, `[{"url": "`+rcv.URL+`", "secret": "`+hookSecret+`", "events": ["key.created", "key.revoked"]}]`, `{}`)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", TokenLifetime: time.Hour})
	id, key := p.create(t)
	status, _ := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 200) // key.activated: not an event this endpoint wants
	status, _ = p.do(t, "DELETE", "/api/v1/licensing/keys/"+id, "token-owner-1", "")
	is.Equal(status, 200)

	for _, want := range []string{"key.created", "key.revoked"} {
		r := nextResult(t, rcv)
		is.True(r.Verified)        // standardwebhooks verifies the delivery
		is.Equal(r.Type, want)     // in log order, only the types asked for
		is.Equal(r.KeyID, id)      // the body is the event object
		is.True(r.TamperedRefused) // a changed body is refused
		is.Equal(r.TamperedError, "No matching signature found")
		is.True(r.ReplayRefused) // an old timestamp is refused
		is.Equal(r.ReplayError, "Message timestamp too old")
	}
	success := `licensing_webhook_deliveries_total{outcome="success"}`
	s := p.scrape(t) // promtool checks the exposition
	for deadline := time.Now().Add(30 * time.Second); s[success] < 2 && time.Now().Before(deadline); s = p.scrape(t) {
		time.Sleep(20 * time.Millisecond) // the receiver reports a delivery before it answers
	}
	is.Equal(s[success], 2.0)
	is.True(!strings.Contains(p.logs.String(), hookSecret[len("whsec_"):])) // the secret is never logged
}

// TestWebhooksSurviveKill: events are created while deliveries are under
// way, the server is killed (SIGKILL) with a delivery in flight, three
// times, and restarted: every created key's event arrives, and an event
// arrives twice only across a kill, with the same webhook-id.
func TestWebhooksSurviveKill(t *testing.T) {
	is := is.New(t)
	rcv := harness.StartWebhookReceiverTB(t, hookSecret, 30*time.Millisecond) // each answer waits: a kill finds one in flight
	cfgPath, data := hookedConfig(t, `[{"url": "`+rcv.URL+`", "secret": "`+hookSecret+`", "events": ["key.created"]}]`,
		`{"firstRetry": "100ms", "pollInterval": "50ms"}`)
	args := []string{"-config", cfgPath, "-data", data, "-store", "file", "-rate-limit", "0", "-owner-rate-limit", "0"}
	created := map[string]bool{}   // key id -> acknowledged (201)
	firstRound := map[string]int{} // webhook-id -> the round it first arrived in
	received, duplicates := 0, 0
	take := func(r harness.WebhookResult, round int) {
		is.True(r.Verified) // every delivery verifies
		received++
		if first, ok := firstRound[r.ID]; ok {
			duplicates++
			is.True(first < round) // a duplicate only across a kill
			return
		}
		firstRound[r.ID] = round
		is.True(created[r.KeyID]) // an event of a key this test created
		delete(created, r.KeyID)
		created["delivered:"+r.KeyID] = true
	}
	const rounds, perRound = 3, 15
	for round := range rounds {
		p := start(t, nil, args...)
		for range perRound {
			status, body, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{"instanceName":"hooks"}`)
			is.Equal(status, 201)
			created[body["id"].(string)] = true
		}
		for range 5 { // deliveries are flowing, more are queued
			take(nextResult(t, rcv), round)
		}
		is.NoErr(p.cmd.Process.Kill()) // SIGKILL: a delivery is in flight (the receiver holds each for 30 ms)
		p.h.Wait()
	drain:
		for {
			select {
			case r := <-rcv.Results: // what arrived before the kill
				take(r, round)
			default:
				break drain
			}
		}
	}
	p := start(t, nil, args...)
	for pending(created) > 0 {
		take(nextResult(t, rcv), rounds)
	}
	p.stop(t)
	sent := rounds * perRound
	t.Logf("key.created events: %d sent, %d deliveries received, %d distinct, %d duplicates over %d kills", sent, received, len(firstRound), duplicates, rounds)
	is.Equal(len(firstRound), sent) // every event delivered
	is.True(duplicates <= rounds)   // at most the delivery in flight at each kill
}

// pending counts the created keys whose event has not arrived.
func pending(created map[string]bool) int {
	n := 0
	for id := range created {
		if !strings.HasPrefix(id, "delivered:") {
			n++
		}
	}
	return n
}

// TestWebhooksReceiverDown: a receiver that answers 503 for a minute (ten
// seconds under -short) gets every event afterwards, in order; meanwhile
// /metrics shows the retries, the queue and its oldest event's age.
func TestWebhooksReceiverDown(t *testing.T) {
	is := is.New(t)
	outage := time.Minute
	if testing.Short() {
		outage = 10 * time.Second
	}
	rcv := harness.StartWebhookReceiverTB(t, hookSecret, 0)
	is.NoErr(rcv.SetDown(true))
	cfgPath, data := hookedConfig(t, `[{"url": "`+rcv.URL+`", "secret": "`+hookSecret+`", "events": ["key.created"]}]`,
		`{"firstRetry": "1s", "maxRetryWait": "5s", "maxAttempts": 1000, "maxRetryTime": "10m", "pollInterval": "100ms"}`)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", TokenLifetime: time.Hour})
	var ids []string
	for range 10 {
		id, _ := p.create(t)
		ids = append(ids, id)
	}
	down := time.Now()
	var during map[string]float64
	for {
		during = p.scrape(t)
		if during[`licensing_webhook_deliveries_total{outcome="retry"}`] >= 2 && during["licensing_webhook_queue_depth"] >= 10 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	is.True(during["licensing_webhook_oldest_undelivered_seconds"] > 0) // the oldest waiting event's age
	time.Sleep(time.Until(down.Add(outage)))                            // the rest of the outage
	is.NoErr(rcv.SetDown(false))

	for _, id := range ids {
		r := nextResult(t, rcv)
		is.True(r.Verified)
		is.Equal(r.KeyID, id) // every event, in order
	}
	var after map[string]float64
	for {
		after = p.scrape(t)
		if after["licensing_webhook_queue_depth"] == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("receiver down %v: 10 events sent, 10 received; %v failed attempts retried", outage,
		after[`licensing_webhook_deliveries_total{outcome="retry"}`])
	is.Equal(after[`licensing_webhook_deliveries_total{outcome="success"}`], 10.0)
	is.Equal(after[`licensing_webhook_deliveries_total{outcome="failed"}`], 0.0) // nothing given up
	is.Equal(after["licensing_webhook_oldest_undelivered_seconds"], 0.0)
}

// TestWebhooksHangingReceiverDoesNotBlock: while a receiver holds a
// delivery without answering, owner requests and validations answer.
func TestWebhooksHangingReceiverDoesNotBlock(t *testing.T) {
	is := is.New(t)
	arrived, release := make(chan struct{}, 100), make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	cfgPath, data := hookedConfig(t, `[{"url": "`+hang.URL+`", "secret": "`+hookSecret+`"}]`, `{"timeout": "10m"}`)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", TokenLifetime: time.Hour})
	_, key := p.create(t)
	select {
	case <-arrived: // the receiver holds the first delivery
	case <-time.After(60 * time.Second):
		t.Fatal("no delivery within 60 s")
	}
	id2, _ := p.create(t)
	is.True(id2 != "") // an owner request answers
	status, _ := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 200) // a validation answers
	status, _ = p.do(t, "GET", "/api/v1/licensing/keys", "token-owner-1", "")
	is.Equal(status, 200)
	status, _ = p.do(t, "DELETE", "/api/v1/licensing/keys/"+id2, "token-owner-1", "")
	is.Equal(status, 200)
	s := p.scrape(t)
	is.Equal(s[`licensing_webhook_deliveries_total{outcome="success"}`], 0.0) // the delivery still hangs
	is.Equal(len(arrived), 0)                                                 // one request in flight at a time
}

// TestWebhooksNeedAnEventLog: webhooks with a store that keeps no event log
// stop the start, naming the fix.
func TestWebhooksNeedAnEventLog(t *testing.T) {
	is := is.New(t)
	cfgPath, data := hookedConfig(t, `[{"url": "https://crm.example.com/hooks", "secret": "`+hookSecret+`"}]`, `{}`)
	m := &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "plain", Addr: "127.0.0.1:0", Stderr: &harness.Buffer{},
		Getenv: func(string) string { return "" },
		Stores: map[string]func(context.Context) (licensing.Store, io.Closer, error){
			"plain": func(context.Context) (licensing.Store, io.Closer, error) {
				return struct{ licensing.Store }{licensing.NewMemoryStore()}, nil, nil // the Store methods only
			},
		}}
	err := m.Run(t.Context(), nil)
	is.True(err != nil)                                                              // refused
	is.True(strings.Contains(err.Error(), "keeps no event log"))                     // says why
	is.True(strings.Contains(err.Error(), "remove webhooks from the configuration")) // and the fix
}

// TestWebhooksKeptOnReload: a reload that changes the webhooks keeps the
// start's endpoints and says so in the log.
func TestWebhooksKeptOnReload(t *testing.T) {
	is := is.New(t)
	cfgPath, data := hookedConfig(t, `[{"url": "https://a.example/hooks", "secret": "`+hookSecret+`"}]`, `{}`)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", TokenLifetime: time.Hour})
	b, err := os.ReadFile(cfgPath)
	is.NoErr(err)
	is.NoErr(os.WriteFile(cfgPath, []byte(strings.Replace(string(b), "https://a.example/hooks", "https://b.example/hooks", 1)), 0o600))
	p.reload <- syscall.SIGHUP
	const warning = "webhooks and webhookDelivery changed in the configuration; they take effect at the next start"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.logs.String(), "configuration reloaded"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no reload within 10 s")
		}
	}
	is.True(strings.Contains(p.logs.String(), warning))         // the operator is told to restart
	is.True(!strings.Contains(p.logs.String(), hookSecret[6:])) // no secret in the log
}
