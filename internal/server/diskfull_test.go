package server_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/matryer/is"
)

// TestDiskFull (needs root for a small tmpfs; skipped where mount is not
// allowed): the file store runs out of space under creates. The store
// refuses writes (503), /readyz answers 503 with the reason while /healthz
// (liveness) stays 200, reads keep working, and after a restart with space
// every 201'd key validates.
func TestDiskFull(t *testing.T) {
	is := is.New(t)
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	cfg := filepath.Join(t.TempDir(), "c.json")
	writeConfig(t, cfg, "business")
	data := filepath.Join(mnt, "d")
	p := start(t, nil, "-config", cfg, "-data", data, "-rate-limit", "0", "-owner-rate-limit", "0")
	acked := map[string]string{}
	long := `{"instanceName":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`
	last := 0
	for i := 0; i < 5000; i++ {
		status, b, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", long)
		last = status
		if status != 201 {
			break
		}
		acked[b["id"].(string)] = b["licenseKey"].(string)
	}
	t.Logf("%d keys acknowledged, then %d", len(acked), last)
	is.Equal(last, 503)
	status, _, raw := p.do(t, "GET", "/readyz", "", "")
	is.Equal(status, 503)
	is.Equal(raw, `{"status":"not ready","reason":"store failed; refusing writes"}`+"\n")
	status, _, raw = p.do(t, "GET", "/healthz", "", "")
	is.Equal(status, 200) // liveness: a restart does not cure a full disk
	is.Equal(raw, `{"status":"ok"}`+"\n")
	for _, k := range acked {
		status, _, _ := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+k+`"}`)
		is.Equal(status, 200) // reads keep working
		break
	}
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	is.Equal(status, 503) // still refusing
	p.stop(t)
	if out, err := exec.Command("mount", "-o", "remount,size=4m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	p = start(t, nil, "-config", cfg, "-data", data, "-rate-limit", "0")
	for id, k := range acked {
		status, _, _ := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+k+`"}`)
		if status != 200 {
			t.Errorf("key %s acknowledged before the disk filled answers %d after restart", id, status)
		}
	}
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	is.Equal(status, 201) // writable again
}
