package server_test

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

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
