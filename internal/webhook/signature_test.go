package webhook_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/harness"
	"github.com/licensekit/licensing/internal/webhook"
	"github.com/matryer/is"
)

func TestParseSecret(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	for _, tc := range []struct {
		name, secret string
		ok           bool
	}{
		{"32 bytes", "whsec_" + b64(32), true},
		{"24 bytes", "whsec_" + b64(24), true},
		{"64 bytes", "whsec_" + b64(64), true},
		{"23 bytes", "whsec_" + b64(23), false},
		{"65 bytes", "whsec_" + b64(65), false},
		{"no prefix", b64(32), false},
		{"not base64", "whsec_!!!!" + b64(32), false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			key, err := webhook.ParseSecret(tc.secret)
			is.Equal(err == nil, tc.ok)
			if err != nil {
				is.True(!strings.Contains(err.Error(), tc.secret) || tc.secret == "") // the error never holds the secret
				is.True(strings.Contains(err.Error(), "head -c 32 /dev/urandom"))     // it says how to make one
				return
			}
			is.Equal(base64.StdEncoding.EncodeToString(key), strings.TrimPrefix(tc.secret, "whsec_"))
		})
	}
}

// The Standard Webhooks specification's own example (its test vectors in
// the reference libraries): id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp
// 1614265330, body {"test": 2432232314}.
func TestSignStandardVector(t *testing.T) {
	is := is.New(t)
	key, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	is.NoErr(err)
	got := webhook.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	is.Equal(got, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
}

// TestStandardWebhooksLibraryVerifies has the Standard Webhooks project's
// own library (npm's standardwebhooks, in a Node receiver) verify real
// deliveries, and refuse each with a tampered body and when replayed ten
// minutes later.
func TestStandardWebhooksLibraryVerifies(t *testing.T) {
	is := is.New(t)
	rcv := harness.StartWebhookReceiverTB(t, testSecret, 0)
	log := &memLog{}
	events := log.add(licensing.EventKeyCreated, licensing.EventKeyShared, licensing.EventKeyRevoked)
	run(t, webhook.Config{Log: log, Cursors: webhook.NewMemoryCursors(), MaxAttempts: 1,
		Endpoints: []webhook.Endpoint{{URL: rcv.URL, Secret: testKey}}})
	for _, e := range events {
		var res harness.WebhookResult
		select {
		case res = <-rcv.Results:
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery within 30 s")
		}
		is.Equal(res.ID, e.ID)             // delivered in order, webhook-id = event id
		is.True(res.Verified)              // standardwebhooks verifies the delivery
		is.Equal(res.Type, string(e.Type)) // and parses its body
		is.True(res.TamperedRefused)       // a changed body is refused
		is.Equal(res.TamperedError, "No matching signature found")
		is.True(res.ReplayRefused) // an old timestamp is refused
		is.Equal(res.ReplayError, "Message timestamp too old")
	}
}
