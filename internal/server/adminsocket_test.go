package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestAdminSocketNeverOpenToOthers: the admin socket hands out the pepper
// and the signing keys, so it is mode 0600 in a 0700 data directory from
// the moment it exists, whatever the umask (000 here) and whatever mode the
// data directory had (0755 here, as mkdir or a volume makes it).
func TestAdminSocketNeverOpenToOthers(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	is.NoErr(os.Mkdir(data, 0o755))
	is.NoErr(os.Chmod(data, 0o755))
	sock := filepath.Join(data, "admin.sock")
	var worst os.FileMode
	for run := 0; run < 10 && worst == 0; run++ {
		cmd := exec.Command("sh", "-c", `umask 000; exec "$0" -data "$1" -addr 127.0.0.1:0 -store file -rate-limit 0`, serverBin, data)
		is.NoErr(cmd.Start())
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			fi, err := os.Lstat(sock)
			if err != nil {
				continue
			}
			if perm := fi.Mode().Perm(); perm&0o077 != 0 {
				worst = perm
			}
			break
		}
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	fi, err := os.Stat(data)
	is.NoErr(err)
	t.Logf("data directory mode while serving: %v", fi.Mode().Perm())
	is.Equal(worst, os.FileMode(0))                  // the socket was never open to group or others
	is.Equal(fi.Mode().Perm()&0o077, os.FileMode(0)) // the data directory is 0700
}
