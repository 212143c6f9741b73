package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
		want  string                          // in the refusal; "" when the server starts
		after func(t *testing.T, data string) // checks what the start did not do
	}{
		{"root-owned 0777 directory, the server another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, data, 0o777)
			return nil, asNobody
		}, "data directory %DATA% is owned by uid 0, not by the server's user (uid 65534)", nil},
		{"root-owned 1777 directory, the server another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, data, 0o777|os.ModeSticky)
			return nil, asNobody
		}, "data directory %DATA% is owned by uid 0", nil},
		{"root-owned 1777 directory, the server root", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			// The server's own directory, as /tmp is root's: others may
			// have put anything in it, and making it private would take
			// it from them.
			mustChmod(t, data, 0o777|os.ModeSticky)
			return nil, nil
		}, "data directory %DATA% is writable by others (mode dtrwxrwxrwx): other users may have put files in it, and may use it; use a directory of the server's own, such as %DATA%/licensing (the server makes it, mode 0700)", nil},
		{"0770 directory of the server's user", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, data, 0o770)
			return nil, nil
		}, "data directory %DATA% is writable by group (mode drwxrwx---)", nil},
		{"-data a symbolic link another user made", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			// Every file is read through the link: whoever made it may
			// point it at a directory of their own once the checks passed.
			link := data + "-link"
			mustSymlinkAs(t, data, link, nobody)
			return []string{"-data", link}, nil
		}, "-link is a symbolic link owned by uid 65534, not by the server's user", nil},
		{"0755 directory owned by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, data, 0o755)
			mustChown(t, data, nobody)
			return nil, nil
		}, "data directory %DATA% is owned by uid 65534", nil},
		{"demo.json planted by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChown(t, filepath.Join(data, "demo.json"), nobody)
			return nil, nil
		}, "%DATA%/demo.json is owned by uid 65534, not by the server's user", nil},
		{"signing key planted by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChown(t, filepath.Join(data, "signing-ed25519.pem"), nobody)
			return nil, nil
		}, "%DATA%/signing-ed25519.pem is owned by uid 65534", nil},
		{"signing record planted by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChown(t, filepath.Join(data, "signing-keys.json"), nobody)
			return nil, nil
		}, "%DATA%/signing-keys.json is owned by uid 65534", nil},
		{"store directory owned by another user", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChown(t, filepath.Join(data, "store"), nobody)
			return nil, nil
		}, "%DATA%/store is owned by uid 65534", nil},
		{"demo.json a symbolic link another user made", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			// The link's target is the server's own file, which passes;
			// whoever made the link may point it elsewhere between the
			// check and the read.
			real := filepath.Join(filepath.Dir(data), filepath.Base(data)+"-demo.json")
			if err := os.Rename(filepath.Join(data, "demo.json"), real); err != nil {
				t.Fatal(err)
			}
			mustSymlinkAs(t, real, filepath.Join(data, "demo.json"), nobody)
			return nil, nil
		}, "%DATA%/demo.json is a symbolic link owned by uid 65534, not by the server's user", nil},
		{"signing key a symbolic link the server's user made", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			real := filepath.Join(filepath.Dir(data), filepath.Base(data)+"-ed25519.pem")
			if err := os.Rename(filepath.Join(data, "signing-ed25519.pem"), real); err != nil {
				t.Fatal(err)
			}
			mustSymlinkAs(t, real, filepath.Join(data, "signing-ed25519.pem"), os.Geteuid())
			return nil, nil
		}, "", nil},
		{"signing key a symbolic link into a directory others may write", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			// Whoever may write the link's target directory may swap the
			// file between the check and the read.
			shared := filepath.Join(t.TempDir(), "shared")
			if err := os.Mkdir(shared, 0o700); err != nil {
				t.Fatal(err)
			}
			mustChmod(t, shared, 0o777)
			real := filepath.Join(shared, "ed25519.pem")
			if err := os.Rename(filepath.Join(data, "signing-ed25519.pem"), real); err != nil {
				t.Fatal(err)
			}
			mustSymlinkAs(t, real, filepath.Join(data, "signing-ed25519.pem"), os.Geteuid())
			return nil, nil
		}, "shared, the directory of the target of the symbolic link %DATA%/signing-ed25519.pem, is writable by group or others", nil},
		{"-signing-key directory a symbolic link to a directory in a shared one", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			// What is above the directory the link leads to is not
			// checked, as above the data directory: /dev/shm, /tmp.
			shared := filepath.Join(t.TempDir(), "shared")
			if err := os.Mkdir(shared, 0o700); err != nil {
				t.Fatal(err)
			}
			mustChmod(t, shared, 0o777|os.ModeSticky)
			keys := filepath.Join(shared, "keys")
			if err := os.Mkdir(keys, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(data, "signing-ed25519.pem"), filepath.Join(keys, "ed25519.pem")); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(t.TempDir(), "keys")
			mustSymlinkAs(t, keys, link, os.Geteuid())
			return []string{"-signing-key", filepath.Join(link, "ed25519.pem")}, nil
		}, "", nil},
		{".lock a symbolic link another user made", true, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			// Opening the lock must not follow it: as root, the server
			// would create whatever file the link names.
			if err := os.Remove(filepath.Join(data, ".lock")); err != nil {
				t.Fatal(err)
			}
			mustSymlinkAs(t, filepath.Join(filepath.Dir(data), filepath.Base(data)+"-planted"), filepath.Join(data, ".lock"), nobody)
			return nil, nil
		}, "%DATA%/.lock is a symbolic link", func(t *testing.T, data string) {
			_, err := os.Lstat(filepath.Join(filepath.Dir(data), filepath.Base(data)+"-planted"))
			if !os.IsNotExist(err) {
				t.Errorf("the lock's link was followed: its target was created (%v)", err)
			}
		}},
		{"-tls-key readable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			dir := t.TempDir()
			cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			certPEM, keyPEM, _ := selfSigned(t, 1)
			writeFiles(t, map[string][]byte{cert: certPEM, key: keyPEM})
			mustChmod(t, key, 0o644)
			return []string{"-tls-cert", cert, "-tls-key", key}, nil
		}, "key.pem is readable by others (mode -rw-r--r--): it is a secret; chmod 600", nil},
		{"-tls-cert writable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			dir := t.TempDir()
			cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			certPEM, keyPEM, _ := selfSigned(t, 1)
			writeFiles(t, map[string][]byte{cert: certPEM, key: keyPEM})
			mustChmod(t, cert, 0o666)
			return []string{"-tls-cert", cert, "-tls-key", key}, nil
		}, "cert.pem is writable by group or others (mode -rw-rw-rw-)", nil},
		{"pepper readable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, filepath.Join(data, "pepper"), 0o644)
			return nil, nil
		}, "%DATA%/pepper is readable by others (mode -rw-r--r--): it is a secret; chmod 600 %DATA%/pepper", nil},
		{"signing key writable by group", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, filepath.Join(data, "signing-rsa.pem"), 0o620)
			return nil, nil
		}, "%DATA%/signing-rsa.pem is writable by group or others (mode -rw--w----)", nil},
		{"store directory writable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, filepath.Join(data, "store"), 0o777)
			return nil, nil
		}, "%DATA%/store is writable by group or others (mode drwxrwxrwx): another user could replace what the server reads there; chmod 700 %DATA%/store", nil},
		{"webhook cursors writable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			// another user could move an endpoint's cursor past events it never got
			path := filepath.Join(data, "webhook-cursors.json")
			if err := os.WriteFile(path, []byte(`{"cursors": {}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			mustChmod(t, path, 0o666)
			return nil, nil
		}, "%DATA%/webhook-cursors.json is writable by group or others (mode -rw-rw-rw-)", nil},
		{"data directory 0755 of the server's user is made private", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			mustChmod(t, data, 0o755)
			return nil, nil
		}, "", nil},
		{"-signing-key in a directory others may write", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			dir := filepath.Join(t.TempDir(), "keys")
			if err := os.Mkdir(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			mustChmod(t, dir, 0o777)
			return []string{"-signing-key", filepath.Join(dir, "ed25519.pem")}, nil
		}, "keys is writable by group or others (mode drwxrwxrwx)", nil},
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
		}, "ed25519.pem is readable by others (mode -rw-r--r--)", nil},
		{"-config writable by others", false, func(t *testing.T, data string) ([]string, *syscall.Credential) {
			cfg := filepath.Join(t.TempDir(), "config.json")
			writeConfig(t, cfg, "business")
			mustChmod(t, cfg, 0o666)
			return []string{"-config", cfg}, nil
		}, "config.json is writable by group or others (mode -rw-rw-rw-): another user could replace what the server reads there; chmod go-w", nil},
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
		}, "", nil},
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
			if tc.after != nil {
				tc.after(t, data)
			}
			if strings.HasPrefix(tc.want, "data directory %DATA% is writable") {
				fi, err := os.Stat(data)
				is.NoErr(err)
				is.True(fi.Mode().Perm()&0o070 != 0) // left as it was, not made private
			}
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

// TestReloadKeepsTheOwnershipRule: SIGHUP reads -config again under the
// rule a start applies. A configuration file that another user may write
// by the time of the reload (chmod 666, or its directory opened to others)
// is refused, naming the path and the fix, and the previous configuration
// stays: a token digest planted in it is not an owner.
func TestReloadKeepsTheOwnershipRule(t *testing.T) {
	tests := []struct {
		name string
		open func(t *testing.T, cfg string)
		want string
	}{
		{"file writable by others", func(t *testing.T, cfg string) { mustChmod(t, cfg, 0o666) },
			"config.json is writable by group or others (mode -rw-rw-rw-)"},
		{"directory writable by others", func(t *testing.T, cfg string) { mustChmod(t, filepath.Dir(cfg), 0o777) },
			"is writable by group or others (mode drwxrwxrwx)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			cfg := filepath.Join(dir, "config.json")
			writeConfig(t, cfg, "business")
			p := start(t, nil, "-config", cfg, "-data", filepath.Join(dir, "data"))

			b, err := os.ReadFile(cfg)
			is.NoErr(err)
			planted := strings.Replace(string(b), `"tokens": [`, `"tokens": [{"sha256": "`+sha("token-planted")+`", "userId": "user-1"}, `, 1)
			is.True(planted != string(b))
			is.NoErr(os.WriteFile(cfg, []byte(planted), 0o600))
			tc.open(t, cfg)
			is.NoErr(p.cmd.Process.Signal(syscall.SIGHUP))
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(p.logs.String(), "reload") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			logs := p.logs.String()
			t.Log(logs)
			is.True(strings.Contains(logs, "reload failed; keeping the previous configuration")) // refused
			is.True(strings.Contains(logs, tc.want))                                             // naming the path and what is wrong
			status, _, _ := p.do(t, "GET", "/api/v1/licensing/keys", "token-planted", "")
			is.Equal(status, 401) // the planted token is no owner
			status, _, _ = p.do(t, "GET", "/api/v1/licensing/keys", "token-owner-1", "")
			is.Equal(status, 200) // the previous configuration serves
		})
	}
}

// mustSymlinkAs makes link point to target, the link owned by uid.
func mustSymlinkAs(t *testing.T, target, link string, uid int) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, uid, uid); err != nil {
		t.Fatal(err)
	}
}
