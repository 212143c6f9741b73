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

// TestKeysGaugeAfterReload: licensing_keys counts the keys of the
// configured organizations; a reload that adds an organization back counts
// its keys again, so revoking them never takes the gauge below zero.
func TestKeysGaugeAfterReload(t *testing.T) {
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
	cut := string(full[:i]) + string(full[j+len(`"active": true}`):]) // org-2 left out
	token3 := `,
             {"sha256": "` + sha("token-owner-3") + `", "userId": "user-3"}`
	is.True(strings.Contains(cut, token3))
	is.NoErr(os.WriteFile(cfgPath, []byte(strings.Replace(cut, token3, "", 1)), 0o600)) // and its owner's token: a start refuses a token that opens nothing
	p = runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "file", RateBurst: 1, TokenLifetime: time.Hour})
	is.NoErr(os.WriteFile(cfgPath, full, 0o600)) // org-2 back
	p.reload <- syscall.SIGHUP
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(p.logs.String(), "configuration reloaded"); {
		if time.Now().After(deadline) {
			t.Fatalf("no reload:\n%s", p.logs.String())
		}
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
