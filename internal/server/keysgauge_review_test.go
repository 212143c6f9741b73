package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// waitUnlocked blocks until no server holds the data directory's lock.
func waitUnlocked(t *testing.T, data string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(data, ".lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// Review (review5): README, Metrics: licensing_keys{state} counts "keys of
// the configured organizations: counted once at start ..., then kept up to
// date by each create and revoke". An organization added back by a SIGHUP
// reload (its keys still in the store) was not counted at start, yet each
// revocation of its keys is subtracted: the active gauge goes negative.
// Cause: internal/server/metrics.go instrument counts only the organizations
// configured at start; reload (server.go) never recounts.
func TestReviewKeysGaugeAfterReload(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t) // org-1 and org-2 (owner token-owner-3)
	m1 := &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "file", RateBurst: 1, TokenLifetime: time.Hour}
	p := runMain(t, m1)
	var ids []string
	for range 2 {
		status, raw := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-3", `{}`)
		is.Equal(status, 201)
		ids = append(ids, field(raw, "id"))
	}
	p.cancel()
	waitUnlocked(t, data)

	full, err := os.ReadFile(cfgPath)
	is.NoErr(err)
	i := strings.Index(string(full), `,
    {"id": "org-2"`)
	j := strings.Index(string(full), `"active": true}
  ],`)
	is.True(i > 0 && j > i)
	is.NoErr(os.WriteFile(cfgPath, []byte(string(full[:i])+string(full[j+len(`"active": true}`):])), 0o600)) // org-2 left out
	p = runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "file", RateBurst: 1, TokenLifetime: time.Hour})
	is.NoErr(os.WriteFile(cfgPath, full, 0o600)) // org-2 back
	p.reload <- syscall.SIGHUP
	for !strings.Contains(p.logs.String(), "configuration reloaded") {
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range ids {
		status, _ := p.do(t, "DELETE", "/api/v1/licensing/keys/"+id, "token-owner-3", "")
		is.Equal(status, 200)
	}
	s := p.scrape(t)
	is.True(s[`licensing_keys{state="active"}`] >= 0) // a count of keys is never negative
	is.Equal(s[`licensing_keys{state="revoked"}`], float64(2))
}
