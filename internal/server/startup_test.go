package server_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/licensekit/licensing/filestore"
	"github.com/licensekit/licensing/internal/harness"
	"github.com/matryer/is"
)

// spawn runs the server binary and waits until it listens (true) or exits
// (false); it never fails the test itself.
func spawn(t *testing.T, env []string, args ...string) (*proc, bool) {
	t.Helper()
	return spawnAs(t, serverBin, nil, env, args...)
}

// spawnAs is spawn with another copy of the binary, run as cred's user
// when cred is not nil.
func spawnAs(t *testing.T, bin string, cred *syscall.Credential, env []string, args ...string) (*proc, bool) {
	t.Helper()
	cmd := serverCmd(env, args...)
	cmd.Path, cmd.Args[0] = bin, bin
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	h, err := harness.Start(cmd, harness.Config{})
	if err != nil && !errors.Is(err, harness.ErrExited) {
		t.Fatalf("server neither listened nor exited: %v", err)
	}
	p := newProc(h)
	t.Cleanup(func() { p.stop(t) })
	return p, err == nil
}

// ownerToken returns the "owner token: " line's token, or "".
func ownerToken(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "owner token: "); ok {
			return rest
		}
	}
	return ""
}

// kidsOf returns the sorted kids of the server's JWKS.
func kidsOf(t *testing.T, p *proc) []string {
	t.Helper()
	status, _, raw := p.do(t, "GET", "/api/v1/licensing/public-keys", "", "")
	if status != 200 {
		t.Fatalf("public-keys: %d", status)
	}
	var doc struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range doc.Keys {
		out = append(out, k.Kid)
	}
	sort.Strings(out)
	return out
}

// refused runs the binary, expecting it to exit non-zero; it returns the
// last line of its output.
func refused(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(serverBin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the server started and stopped:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("not a non-zero exit: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func TestSimultaneousFirstStarts(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	procs := make([]*proc, 8)
	up := make([]bool, 8)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], up[i] = spawn(t, nil, "-data", data)
		}()
	}
	wg.Wait()
	var survivor *proc
	for i, p := range procs {
		if !up[i] {
			logs := p.logs.String()
			is.True(strings.Contains(logs, filepath.Join(data, ".lock"))) // the loser names the lock
			is.Equal(strings.Count(strings.TrimSpace(logs), "\n"), 0)     // in one line
			is.Equal(ownerToken(logs), "")                                // and shows no token
			continue
		}
		is.Equal(survivor, nil) // exactly one survivor
		survivor = p
	}
	is.True(survivor != nil)
	token := ownerToken(survivor.logs.String())
	is.True(token != "") // printed by the survivor
	status, created, _ := survivor.do(t, "POST", "/api/v1/licensing/keys", token, `{}`)
	is.Equal(status, 201)
	kids := kidsOf(t, survivor)
	survivor.stop(t)

	p := start(t, nil, "-data", data)
	is.Equal(ownerToken(p.logs.String()), "") // not shown again
	is.Equal(kidsOf(t, p), kids)              // the same signing keys
	status, _, _ = p.do(t, "GET", "/api/v1/licensing/keys", token, "")
	is.Equal(status, 200) // the survivor's owner token works
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+created["licenseKey"].(string)+`"}`)
	is.Equal(status, 200) // and the pepper on disk is the one the key was made with
}

// TestSimultaneousFirstStartsShareASigningKey: servers with data
// directories of their own, started at once with one -signing-key and
// -rsa-signing-key path that does not exist yet (shared storage, several
// servers on one database), all serve the same keys: the files are created
// exclusively, and a server that lost the race takes the winner's key.
func TestSimultaneousFirstStartsShareASigningKey(t *testing.T) {
	is := is.New(t)
	shared := t.TempDir()
	ed, rs := filepath.Join(shared, "ed25519.pem"), filepath.Join(shared, "rsa.pem")
	const n = 8
	procs := make([]*proc, n)
	up := make([]bool, n)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], up[i] = spawn(t, nil, "-data", filepath.Join(t.TempDir(), "data"), "-store", "memory",
				"-signing-key", ed, "-rsa-signing-key", rs)
		}()
	}
	wg.Wait()
	var want []string
	generated := 0
	for i, p := range procs {
		is.True(up[i]) // every server starts
		kids := kidsOf(t, p)
		if want == nil {
			want = kids
		}
		is.Equal(kids, want) // and serves the same keys
		generated += strings.Count(p.logs.String(), "generated a signing key")
	}
	is.Equal(generated, 2) // one Ed25519 and one RSA key were made, by whoever came first
	for _, p := range procs {
		p.stop(t)
	}
	p := start(t, nil, "-data", filepath.Join(t.TempDir(), "data"), "-store", "memory", "-signing-key", ed, "-rsa-signing-key", rs)
	is.Equal(kidsOf(t, p), want) // the files hold the keys they served
}

func TestFailedFirstStartShowsTokenNextTime(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	busy, _ := start(t, nil, "-data", filepath.Join(t.TempDir(), "other")), 0
	addr := strings.TrimPrefix(busy.url, "http://")
	cmd := exec.Command(serverBin, "-addr", addr, "-data", data) // the port is in use
	out, err := cmd.CombinedOutput()
	is.True(err != nil)
	is.True(!strings.Contains(string(out), "owner token")) // no token for a server that never listened
	_, err = os.Stat(filepath.Join(data, "demo.json"))
	is.True(os.IsNotExist(err))

	p := start(t, nil, "-data", data)
	token := ownerToken(p.logs.String())
	is.True(token != "") // the next start shows it
	status, _, _ := p.do(t, "GET", "/api/v1/licensing/keys", token, "")
	is.Equal(status, 200)
}

// withKey starts a server on a new data directory with args, creates a key,
// stops the server and returns the data directory and the key.
func withKey(t *testing.T, env []string, args ...string) (cfg, data, key string) {
	t.Helper()
	dir := t.TempDir()
	cfg, data = filepath.Join(dir, "config.json"), filepath.Join(dir, "data")
	writeConfig(t, cfg, "business")
	p := start(t, env, append([]string{"-config", cfg, "-data", data}, args...)...)
	status, created, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	if status != 201 {
		t.Fatalf("create: %d", status)
	}
	p.stop(t)
	return cfg, data, created["licenseKey"].(string)
}

func TestPepperContinuity(t *testing.T) {
	other := "LICENSING_PEPPER=" + strings.Repeat("cd", 32)
	tests := []struct {
		name   string
		env    []string
		change func(t *testing.T, data string)
		want   string
	}{
		{"deleted", nil, func(t *testing.T, data string) {
			os.Remove(filepath.Join(data, "pepper"))
		}, "the file %DATA%/pepper is missing"},
		{"replaced", nil, func(t *testing.T, data string) {
			os.WriteFile(filepath.Join(data, "pepper"), []byte(strings.Repeat("ef", 32)+"\n"), 0o600)
		}, "the pepper from the file %DATA%/pepper"},
		{"overridden by the environment", []string{other}, func(t *testing.T, data string) {}, "the pepper from the LICENSING_PEPPER environment variable"},
		{"deleted, and the environment's pepper is new", []string{other}, func(t *testing.T, data string) {
			os.Remove(filepath.Join(data, "pepper"))
		}, "the pepper from the LICENSING_PEPPER environment variable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			cfg, data, key := withKey(t, nil)
			saved, err := os.ReadFile(filepath.Join(data, "pepper"))
			is.NoErr(err)
			tc.change(t, data)
			line := refused(t, tc.env, "-config", cfg, "-data", data)
			is.True(strings.Contains(line, strings.ReplaceAll(tc.want, "%DATA%", data))) // names the source
			is.True(strings.Contains(line, "every issued key would stop validating"))
			if tc.name == "deleted" {
				_, err := os.Stat(filepath.Join(data, "pepper"))
				is.True(os.IsNotExist(err)) // no new pepper was made
			}
			is.NoErr(os.WriteFile(filepath.Join(data, "pepper"), saved, 0o600))
			p := start(t, nil, "-config", cfg, "-data", data)
			status, _, _ := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
			is.Equal(status, 200) // the original pepper still works
		})
	}
	t.Run("the memory store is exempt", func(t *testing.T) {
		is := is.New(t)
		cfg, data, _ := withKey(t, nil, "-store", "memory")
		start(t, []string{other}, "-config", cfg, "-data", data, "-store", "memory")
		_ = is
	})
}

func TestSigningKeyContinuity(t *testing.T) {
	is := is.New(t)
	cfg, data, _ := withKey(t, nil)
	p := start(t, nil, "-config", cfg, "-data", data)
	before := kidsOf(t, p)
	is.Equal(len(before), 2)
	_, created, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	id := created["id"].(string)
	_, old, _ := p.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt?alg=EdDSA", "token-owner-1", "")
	p.stop(t)

	edPath := filepath.Join(data, "signing-ed25519.pem")
	saved, err := os.ReadFile(edPath)
	is.NoErr(err)
	is.NoErr(os.Remove(edPath))
	line := refused(t, nil, "-config", cfg, "-data", data)
	is.True(strings.Contains(line, "signing key "+edPath+" is missing")) // names the file
	is.True(strings.Contains(line, "-rotate-signing-keys"))              // and the way out
	_, err = os.Stat(edPath)
	is.True(os.IsNotExist(err)) // no key was made

	rsaPath := filepath.Join(data, "signing-rsa.pem")
	is.NoErr(os.WriteFile(edPath, saved, 0o600))
	is.NoErr(os.Rename(rsaPath, rsaPath+".away"))
	line = refused(t, nil, "-config", cfg, "-data", data)
	is.True(strings.Contains(line, "signing key "+rsaPath+" is missing")) // the RSA key too
	is.NoErr(os.Rename(rsaPath+".away", rsaPath))

	// another key in the file: refused as well
	other := filepath.Join(t.TempDir(), "d")
	start(t, nil, "-data", other).stop(t)
	b, err := os.ReadFile(filepath.Join(other, "signing-ed25519.pem"))
	is.NoErr(err)
	is.NoErr(os.WriteFile(edPath, b, 0o600))
	line = refused(t, nil, "-config", cfg, "-data", data)
	is.True(strings.Contains(line, "is not the key "+filepath.Join(data, "signing-keys.json")+" records"))

	// rotation: a new Ed25519 key, the old public key still published
	is.NoErr(os.Remove(edPath))
	p = start(t, nil, "-config", cfg, "-data", data, "-rotate-signing-keys")
	after := kidsOf(t, p)
	is.Equal(len(after), 3)
	for _, kid := range before {
		is.True(strings.Contains(strings.Join(after, " "), kid)) // the old kids stay
	}
	is.True(strings.Contains(p.logs.String(), "signing key rotated"))
	var header struct{ Kid string }
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(old["jwt"].(string), ".")[0])
	is.NoErr(json.Unmarshal(h, &header))
	is.True(strings.Contains(strings.Join(after, " "), header.Kid)) // a token signed before still finds its key
	_, _, pemBody := p.do(t, "GET", "/api/v1/licensing/public-keys.pem", "", "")
	is.Equal(strings.Count(pemBody, "BEGIN PUBLIC KEY"), 3)
	p.stop(t)

	p = start(t, nil, "-config", cfg, "-data", data) // later starts need no flag
	is.Equal(kidsOf(t, p), after)
	p.stop(t)

	is.NoErr(os.Remove(edPath))
	p = start(t, nil, "-config", cfg, "-data", data, "-rotate-signing-keys", "-signing-key-overlap", "0s")
	now := kidsOf(t, p)
	is.Equal(len(now), 3) // the key rotated out now is dropped at once; the first one keeps its overlap
	for _, kid := range before {
		is.True(strings.Contains(strings.Join(now, " "), kid))
	}
	for _, kid := range after {
		if !strings.Contains(strings.Join(before, " "), kid) {
			is.True(!strings.Contains(strings.Join(now, " "), kid)) // the key rotated out with overlap 0
		}
	}
}

func TestPublicKeysPEMAndRS256ByDefault(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg, data := filepath.Join(dir, "config.json"), filepath.Join(dir, "data")
	writeConfig(t, cfg, "business")
	p := start(t, nil, "-config", cfg, "-data", data, "-issuer", "licensing.acme.test")
	is.True(strings.Contains(p.logs.String(), "issuer=licensing.acme.test")) // printed at start
	for _, name := range []string{"signing-rsa.pem", "signing-ed25519.pem", "signing-keys.json", "pepper"} {
		fi, err := os.Stat(filepath.Join(data, name))
		is.NoErr(err)
		is.Equal(fi.Mode().Perm(), os.FileMode(0o600))
	}
	_, _, served := p.do(t, "GET", "/api/v1/licensing/public-keys.pem", "", "")
	block, _ := pem.Decode([]byte(served))
	is.True(block != nil)
	is.Equal(block.Type, "PUBLIC KEY")
	is.True(len(block.Bytes) > 256) // RSA first

	out, err := exec.Command(serverBin, "public-keys", "-data", data).Output()
	is.NoErr(err)
	is.Equal(string(out), served) // the command prints what the route serves

	_, created, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	id := created["id"].(string)
	status, tok, _ := p.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt", "token-owner-1", "")
	is.Equal(status, 200)
	jwt := tok["jwt"].(string)
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	is.True(strings.Contains(string(h), `"alg":"RS256"`)) // RS256 by default
	_, ed, _ := p.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt?alg=EdDSA", "token-owner-1", "")
	h, _ = base64.RawURLEncoding.DecodeString(strings.Split(ed["jwt"].(string), ".")[0])
	is.True(strings.Contains(string(h), `"alg":"EdDSA"`)) // EdDSA by asking

	needTool(t, "php", "php-cli")
	pemPath := filepath.Join(dir, "license-public.pem") // as a Storno-style decoder keeps it
	is.NoErr(os.WriteFile(pemPath, []byte(served), 0o600))
	php := func(token, issuer string) error {
		cmd := exec.Command("php", "testdata/interop/verify_rs256.php")
		cmd.Env = append(os.Environ(), "TOKEN="+token, "PUBKEY_PEM="+pemPath, "ISSUER="+issuer)
		return cmd.Run()
	}
	is.NoErr(php(jwt, "licensing.acme.test"))                             // openssl_verify accepts the default token
	is.True(php(jwt, "licensing.example.com") != nil)                     // -issuer overrides the config file
	is.True(php(jwt[:len(jwt)-6]+"AAAAAA", "licensing.acme.test") != nil) // and a bad signature is refused
}

// TestSigningKeysLostWithTheirRecord: rm <data>/signing* takes the keys and
// the record that would have refused a new key. Over a store that holds
// keys, the start is refused all the same; -rotate-signing-keys accepts it.
func TestSigningKeysLostWithTheirRecord(t *testing.T) {
	is := is.New(t)
	cfg, data, key := withKey(t, nil)
	for _, name := range []string{"signing-ed25519.pem", "signing-rsa.pem", "signing-keys.json"} {
		is.NoErr(os.Remove(filepath.Join(data, name)))
	}
	line := refused(t, nil, "-config", cfg, "-data", data)
	is.True(strings.Contains(line, "signing-ed25519.pem is missing")) // names the file
	is.True(strings.Contains(line, "-rotate-signing-keys"))           // and the way out
	_, err := os.Stat(filepath.Join(data, "signing-ed25519.pem"))
	is.True(os.IsNotExist(err)) // no key was made

	p := start(t, nil, "-config", cfg, "-data", data, "-rotate-signing-keys")
	status, _, _ := p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 200)
	p.stop(t)

	fresh := filepath.Join(t.TempDir(), "d") // an empty store: a first start makes its keys
	start(t, nil, "-config", cfg, "-data", fresh).stop(t)
}

// TestFirstStartKilledBeforePepperSaved: a start of an earlier build that
// opened the file store (which recorded the fresh pepper's fingerprint) and
// was killed before it saved the pepper file left a store with no key, a
// fingerprint, and no pepper. The next start adopts a new pepper (no key
// depends on the old one) and keeps working across restarts; a start now
// saves a fresh pepper before any store records it.
func TestFirstStartKilledBeforePepperSaved(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	st, err := filestore.Open(filepath.Join(data, "store"), filestore.Options{PepperFingerprint: "fp-of-a-pepper-never-saved"})
	is.NoErr(err)
	is.NoErr(st.Close())
	p := start(t, nil, "-data", data)
	status, _, _ := p.do(t, "GET", "/api/v1/licensing/keys", "", "")
	is.Equal(status, 401) // serving
	p.stop(t)
	_, err = os.Stat(filepath.Join(data, "pepper"))
	is.NoErr(err) // the new pepper is saved
	p = start(t, nil, "-data", data)
	p.stop(t)
}

// TestLeftoversRemoved: a server killed while serving a backup, or while
// saving a secret, leaves a temporary file in the data directory; the next
// start removes it (and nothing else).
func TestLeftoversRemoved(t *testing.T) {
	is := is.New(t)
	data := filepath.Join(t.TempDir(), "data")
	p := start(t, nil, "-data", data)
	p.stop(t)
	left := []string{filepath.Join(data, ".backup-123"), filepath.Join(data, ".tmp-456")}
	kept := filepath.Join(data, "notes.backup-123")
	for _, f := range append(left, kept) {
		is.NoErr(os.WriteFile(f, []byte("x"), 0o600))
	}
	p = start(t, nil, "-data", data)
	p.stop(t)
	for _, f := range left {
		_, err := os.Stat(f)
		is.True(os.IsNotExist(err)) // removed
	}
	_, err := os.Stat(kept)
	is.NoErr(err) // not one of ours
}
