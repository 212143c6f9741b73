package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"
)

// nobody is the user another user's files belong to in these tests.
const nobody = 65534

// needRoot skips a test that must chown files or run the server as another
// user; under CI=true (.ci/run runs the tests as root) it fails instead.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("this test needs root (to chown files to another user and run the server as another user): CI is set, and .ci/run runs the tests as root")
	}
	t.Skip("needs root, to chown files to another user and run the server as another user: skipping this case")
}

// TestDataDirOwnershipAndModes: like OpenSSH's StrictModes, a start refuses
// a data directory, or a state file in it, that another user owns or may
// write, a secret that others may read, and a -signing-key or -config file
// (or its directory) outside the data directory that another user may
// write; the line names the path and the command that fixes it. Files
// outside the data directory owned by root (as configuration management
// installs them) are taken.
func TestDataDirOwnershipAndModes(t *testing.T) {
	// base is traversable by every user, so that the server can run as
	// nobody: it holds a copy of the binary and the data directories.
	base, err := os.MkdirTemp("", "datadir")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "licensing-server")
	b, err := os.ReadFile(serverBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// started makes a data directory (owned by the test's user, 0700)
	// that a server has run on once.
	n := 0
	started := func(t *testing.T) string {
		n++
		data := filepath.Join(base, "data"+string(rune('a'+n%26))+strings.Repeat("x", n/26))
		p, up := spawnAs(t, bin, nil, nil, "-data", data)
		if !up {
			t.Fatalf("first start: %s", p.logs.String())
		}
		p.stop(t)
		return data
	}
	asNobody := &syscall.Credential{Uid: nobody, Gid: nobody}

	tests := []struct {
		name  string
		root  bool // needs root: chowns, or runs the server as nobody
		setup func(t *testing.T, data string) (args []string, cred *syscall.Credential)
		want  string // in the refusal; "" when the server starts
	}{
		{"root-owned 0777 directory, the server another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, data, 0o777)
			return nil, asNobody
		}, "data directory %DATA% is owned by uid 0, not by the server's user (uid 65534)"},
		{"root-owned 1777 directory, the server another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, data, 0o777|os.ModeSticky)
			return nil, asNobody
		}, "data directory %DATA% is owned by uid 0"},
		{"0755 directory owned by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, data, 0o755)
			mustChown(t, data, nobody)
			return nil, nil
		}, "data directory %DATA% is owned by uid 65534"},
		{"demo.json planted by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChown(t, filepath.Join(data, "demo.json"), nobody)
			return nil, nil
		}, "%DATA%/demo.json is owned by uid 65534, not by the server's user"},
		{"signing key planted by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChown(t, filepath.Join(data, "signing-ed25519.pem"), nobody)
			return nil, nil
		}, "%DATA%/signing-ed25519.pem is owned by uid 65534"},
		{"signing record planted by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChown(t, filepath.Join(data, "signing-keys.json"), nobody)
			return nil, nil
		}, "%DATA%/signing-keys.json is owned by uid 65534"},
		{"store directory owned by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChown(t, filepath.Join(data, "store"), nobody)
			return nil, nil
		}, "%DATA%/store is owned by uid 65534"},
		{"pepper readable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, filepath.Join(data, "pepper"), 0o644)
			return nil, nil
		}, "%DATA%/pepper is readable by others (mode -rw-r--r--): it is a secret; chmod 600 %DATA%/pepper"},
		{"signing key writable by group", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, filepath.Join(data, "signing-rsa.pem"), 0o620)
			return nil, nil
		}, "%DATA%/signing-rsa.pem is writable by group or others (mode -rw--w----)"},
		{"store directory writable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, filepath.Join(data, "store"), 0o777)
			return nil, nil
		}, "%DATA%/store is writable by group or others (mode drwxrwxrwx): another user could replace what the server reads there; chmod 700 %DATA%/store"},
		{"data directory 0755 of the server's user is made private", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, data, 0o755)
			return nil, nil
		}, ""},
		{"-signing-key in a directory others may write", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			dir := filepath.Join(t.TempDir(), "keys")
			if err := os.Mkdir(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			mustChmod(t, dir, 0o777)
			return []string{"-signing-key", filepath.Join(dir, "ed25519.pem")}, nil
		}, "keys is writable by group or others (mode drwxrwxrwx)"},
		{"-signing-key readable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			key := filepath.Join(t.TempDir(), "ed25519.pem")
			b, err := os.ReadFile(filepath.Join(data, "signing-ed25519.pem"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(key, b, 0o644); err != nil {
				t.Fatal(err)
			}
			mustChmod(t, key, 0o644)
			return []string{"-signing-key", key}, nil
		}, "ed25519.pem is readable by others (mode -rw-r--r--)"},
		{"-config writable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			cfg := filepath.Join(t.TempDir(), "config.json")
			writeConfig(t, cfg, "business")
			mustChmod(t, cfg, 0o666)
			return []string{"-config", cfg}, nil
		}, "config.json is writable by group or others (mode -rw-rw-rw-): another user could replace what the server reads there; chmod go-w"},
		{"root-owned -config of mode 0644, the server another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			dir := filepath.Join(base, "etc"+filepath.Base(data))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			mustChmod(t, dir, 0o755)
			cfg := filepath.Join(dir, "config.json")
			writeConfig(t, cfg, "business")
			mustChmod(t, cfg, 0o644)
			fresh := filepath.Join(base, "nobody"+filepath.Base(data))
			if err := os.Mkdir(fresh, 0o700); err != nil {
				t.Fatal(err)
			}
			mustChown(t, fresh, nobody)
			return []string{"-config", cfg, "-data", fresh}, asNobody
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			if tc.root {
				needRoot(t)
			}
			data := started(t)
			args, cred := tc.setup(t, data)
			p, up := spawnAs(t, bin, cred, nil, append([]string{"-data", data}, args...)...)
			if tc.want == "" {
				if !up {
					t.Fatalf("refused: %s", p.logs.String())
				}
				p.stop(t)
				if !strings.Contains(strings.Join(args, " "), "-data") {
					fi, err := os.Stat(data)
					is.NoErr(err)
					is.Equal(fi.Mode().Perm(), os.FileMode(0o700)) // made private
				}
				return
			}
			is.True(!up) // refused
			lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
			line := lines[len(lines)-1]
			t.Log(line)
			is.True(strings.Contains(line, strings.ReplaceAll(tc.want, "%DATA%", data))) // names the path and the fix
			is.Equal(ownerToken(p.logs.String()), "")                                    // nothing was read or made
		})
	}
}

func mustChmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func mustChown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}
