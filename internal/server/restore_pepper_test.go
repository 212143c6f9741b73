package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestRestoreUnderAnotherPepper: a backup of a live file
// store is restored into a new directory, and that directory is then
// started with another pepper (from the environment, or a replaced pepper
// file). The restored store must refuse to open rather than answer every
// key with a signed 401.
func TestRestoreUnderAnotherPepper(t *testing.T) {
	envPepper := "LICENSING_PEPPER=" + strings.Repeat("ab", 32)
	otherPepper := "LICENSING_PEPPER=" + strings.Repeat("cd", 32)
	for _, tc := range []struct {
		name       string
		env        []string // the server that is backed up
		change     func(t *testing.T, restored string)
		restartEnv []string
	}{
		{"pepper file replaced", nil, func(t *testing.T, restored string) {
			os.WriteFile(filepath.Join(restored, "pepper"), []byte(strings.Repeat("ef", 32)+"\n"), 0o600)
		}, nil},
		{"environment set", nil, func(*testing.T, string) {}, []string{otherPepper}},
		{"environment pepper, restored with another", []string{envPepper}, func(*testing.T, string) {}, []string{otherPepper}},
		{"environment pepper, restored with none", []string{envPepper}, func(*testing.T, string) {}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "c.json")
			writeConfig(t, cfg, "business")
			data := filepath.Join(dir, "d")
			p := start(t, tc.env, "-config", cfg, "-data", data)
			status, created, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
			is.Equal(status, 201)
			key := created["licenseKey"].(string)
			archive := filepath.Join(dir, "b.tar")
			out, err := exec.Command(serverBin, "backup", "-data", data, "-o", archive).CombinedOutput()
			is.True(err == nil) // backup
			p.stop(t)
			restored := filepath.Join(dir, "r")
			out, err = exec.Command(serverBin, "restore", "-data", restored, archive).CombinedOutput()
			if err != nil {
				t.Fatalf("restore: %v %s", err, out)
			}
			tc.change(t, restored)
			q, up := spawn(t, tc.restartEnv, "-config", cfg, "-data", restored)
			if !up {
				is.True(strings.Contains(q.logs.String(), "pepper")) // refused naming the pepper: held
				return
			}
			status, _, _ = q.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
			t.Errorf("restored store started under another pepper; the key that got a 201 now answers %d", status)
		})
	}
}
