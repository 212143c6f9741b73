package pgstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/harness"
	"github.com/matryer/is"
)

// TestWebhooksTwoServersOneDatabase: two servers on one database deliver
// the same endpoint's events; the endpoint's lease in the database lets one
// server at a time deliver, so each event arrives once, verified by npm's
// standardwebhooks, wherever it was created.
func TestWebhooksTwoServersOneDatabase(t *testing.T) {
	is := is.New(t)
	const secret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	rcv := harness.StartWebhookReceiverTB(t, secret, 0)
	_, _, dsn := newStore(t)
	cfg := writeConfig(t)
	b, err := os.ReadFile(cfg)
	is.NoErr(err)
	hooked := filepath.Join(t.TempDir(), "hooked.json")
	doc := strings.TrimSuffix(strings.TrimSpace(string(b)), "}") +
		fmt.Sprintf(`, "webhooks": [{"url": %q, "secret": %q, "events": ["key.created"]}], "webhookDelivery": {"pollInterval": "50ms"}}`, rcv.URL, secret)
	is.NoErr(os.WriteFile(hooked, []byte(doc), 0o600))
	dataA := t.TempDir()
	a := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", hooked, "-data", dataA)
	c := startLicensingServer(t, "-store", "postgres", "-dsn", dsn, "-config", hooked, "-data", sharedDataDir(t, dataA))

	created := map[string]bool{}
	for i := range 20 {
		status, body := []*server{a, c}[i%2].do(t, "POST", "/api/v1/licensing/keys", "owner-token", `{}`)
		is.Equal(status, 201)
		created[body["id"].(string)] = true
	}
	seen := map[string]int{}
	for len(seen) < len(created) {
		select {
		case r := <-rcv.Results:
			is.True(r.Verified)       // standardwebhooks verifies it
			is.True(created[r.KeyID]) // an event of a created key
			seen[r.ID]++
		case <-time.After(60 * time.Second):
			t.Fatalf("%d of %d events delivered within 60 s", len(seen), len(created))
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n) // one server at a time: no duplicate without a crash
		}
	}
	select {
	case r := <-rcv.Results:
		t.Errorf("a delivery more: %+v", r)
	case <-time.After(500 * time.Millisecond): // ten poll intervals of both servers
	}
}
