package server_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
	"github.com/licensekit/licensing/internal/harness"
	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// dumpStore is a memory store with a Backup method that writes its keys as
// JSON, to test the backup plumbing without the file store.
type dumpStore struct{ *licensing.MemoryStore }

func (s dumpStore) Backup(ctx context.Context, w io.Writer) error {
	var all []licensing.Key
	for _, org := range []string{"org-1", "org-2"} {
		keys, err := s.ListKeys(ctx, org, licensing.KeyCursor{}, 0)
		if err != nil {
			return err
		}
		all = append(all, keys...)
	}
	return json.NewEncoder(w).Encode(all)
}

// command runs a licensing-server subcommand in process.
func command(args ...string) (int, string) {
	var out harness.Buffer
	m := &server.Main{Stderr: &out, Getenv: func(string) string { return "" }}
	code := m.Main(args)
	return code, out.String()
}

// TestBackupCommands checks the backup archive and the restore command's
// refusals with a store whose backup is JSON.
func TestBackupCommands(t *testing.T) {
	is := is.New(t)
	undo := server.SetRestoreStore(func(r io.Reader, dir string) error {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "keys.json"), b, 0o600)
	})
	defer undo()
	cfgPath, data := configured(t)
	store := dumpStore{licensing.NewMemoryStore()}
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "dump", RateBurst: 1, TokenLifetime: time.Hour,
		Stores: map[string]func(context.Context) (licensing.Store, io.Closer, error){
			"dump": func(context.Context) (licensing.Store, io.Closer, error) { return store, nil, nil },
		}})
	id, key := p.create(t)
	st, err := os.Stat(filepath.Join(data, server.AdminSocket))
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o600)) // the socket is the owner's only

	archive := filepath.Join(t.TempDir(), "backup.tar")
	code, out := command("backup", "-data", data, "-o", archive)
	is.Equal(code, 0) // backup
	st, err = os.Stat(archive)
	is.NoErr(err)
	is.Equal(st.Mode().Perm(), os.FileMode(0o600)) // the archive holds secrets
	is.True(!strings.Contains(out, key))

	restored := filepath.Join(t.TempDir(), "restored")
	code, out = command("restore", "-data", restored, archive)
	is.Equal(code, 0) // restore
	// Every secret and record a start reads from the directory: without
	// signing-rsa.pem and signing-keys.json, the restored server would make
	// a new RS256 key (the default token algorithm) and nothing would stop it.
	for _, name := range []string{"pepper", "signing-ed25519.pem", "signing-rsa.pem", "signing-keys.json"} {
		want, err := os.ReadFile(filepath.Join(data, name))
		is.NoErr(err) // the running server made it
		got, err := os.ReadFile(filepath.Join(restored, name))
		is.NoErr(err)
		is.Equal(got, want) // the secrets come back
		st, _ := os.Stat(filepath.Join(restored, name))
		is.Equal(st.Mode().Perm(), os.FileMode(0o600))
	}
	keys, err := os.ReadFile(filepath.Join(restored, "store", "keys.json"))
	is.NoErr(err)
	is.True(strings.Contains(string(keys), id)) // the store's backup came through

	whole, _ := os.ReadFile(archive)
	cases := []struct {
		name    string
		archive []byte
		dir     func(t *testing.T) string
		want    string
	}{
		{"not empty", whole, func(t *testing.T) string { return restored }, "not empty"},
		{"cut short", whole[:len(whole)-1536], nil, "manifest"},
		{"store cut", cut(t, whole), nil, "differs from the manifest"},
		{"foreign entry", withEntry(t, "../../etc/evil", "x"), nil, "unexpected entry"},
		{"not a tar", []byte("hello"), nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "a.tar")
			is.NoErr(os.WriteFile(path, tc.archive, 0o600))
			dir := filepath.Join(t.TempDir(), "new")
			if tc.dir != nil {
				dir = tc.dir(t)
			}
			before, _ := os.ReadDir(dir)
			code, out := command("restore", "-data", dir, path)
			is.Equal(code, 1) // refused
			is.True(strings.Contains(out, tc.want))
			after, _ := os.ReadDir(dir)
			is.Equal(len(after), len(before)) // nothing left behind
		})
	}

	code, out = command("backup", "-data", t.TempDir(), "-o", filepath.Join(t.TempDir(), "x.tar"))
	is.Equal(code, 1) // no server there
	is.True(strings.Contains(out, "is the server running"))
	code, _ = command("backup", "-data", data)
	is.Equal(code, 2) // -o is required
}

// cut returns the archive with the store entry's last byte changed.
func cut(t *testing.T, whole []byte) []byte {
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(whole)), tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Name == "store" {
			b[len(b)-1] ^= 1
		}
		tw.WriteHeader(h)
		tw.Write(b)
	}
	tw.Close()
	return out.Bytes()
}

func withEntry(t *testing.T, name, body string) []byte {
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body)), Typeflag: tar.TypeReg})
	io.WriteString(tw, body)
	tw.Close()
	return out.Bytes()
}

// ustarBlock is a tar header block, made by hand: archive/tar will not
// write the GNU sparse records that an attacker can.
func ustarBlock(name string, typ byte, size int) []byte {
	b := make([]byte, 512)
	copy(b[0:], name)
	copy(b[100:], "0000600\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], fmt.Sprintf("%011o\x00", size))
	copy(b[136:], fmt.Sprintf("%011o\x00", 0))
	b[156] = typ
	copy(b[257:], "ustar\x0000")
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// padded appends b and zeros up to the next 512-byte block.
func padded(out *bytes.Buffer, b []byte) {
	out.Write(b)
	out.Write(make([]byte, (512-len(b)%512)%512))
}

// sparseArchive is an archive of a few KB whose store entry is a PAX
// sparse file of size bytes (one byte of data, then a hole), with a
// manifest that agrees with it: size and SHA-256 of what it expands to.
func sparseArchive(size int) []byte {
	var out bytes.Buffer
	var pax bytes.Buffer
	for _, kv := range [][2]string{{"GNU.sparse.major", "0"}, {"GNU.sparse.minor", "1"}, {"GNU.sparse.name", "store"},
		{"GNU.sparse.size", fmt.Sprint(size)}, {"GNU.sparse.numblocks", "1"}, {"GNU.sparse.map", "0,1"}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 2
		if len(fmt.Sprint(n)+rec) != n {
			n++
		}
		fmt.Fprintf(&pax, "%d%s", n, rec)
	}
	out.Write(ustarBlock("PaxHeaders/store", 'x', pax.Len()))
	padded(&out, pax.Bytes())
	out.Write(ustarBlock("store", '0', 1))
	padded(&out, []byte("x"))
	sum := sha256.New()
	sum.Write([]byte("x"))
	io.CopyN(sum, zeros{}, int64(size-1))
	man, _ := json.Marshal(map[string]any{"created": "2026-11-26T12:00:00Z", "files": []string{},
		"storeBytes": size, "storeSha256": hex.EncodeToString(sum.Sum(nil))})
	tw := tar.NewWriter(&out)
	tw.WriteHeader(&tar.Header{Name: "backup.json", Mode: 0o600, Size: int64(len(man)), Typeflag: tar.TypeReg})
	tw.Write(man)
	tw.Close()
	return out.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestRestoreWritesNothingBeyondTheManifest: restore checks the whole
// archive against its manifest before it writes, and bounds every entry by
// the archive's own size: a sparse entry that declares 64 MiB in a few KB
// (with a manifest that agrees), and a store entry larger than the
// manifest says, are refused before the store's restore is handed a byte.
func TestRestoreWritesNothingBeyondTheManifest(t *testing.T) {
	var handed int64
	undo := server.SetRestoreStore(func(r io.Reader, dir string) error {
		n, err := io.Copy(io.Discard, r)
		handed += n
		if err != nil {
			return err
		}
		return os.Mkdir(dir, 0o700)
	})
	defer undo()
	big := bytes.Repeat([]byte("k"), 256<<10)
	small := sha256.Sum256(big[:10])
	oversized := withEntry(t, "store", string(big))
	oversized = oversized[:len(oversized)-1024] // drop the end-of-archive blocks to add the manifest
	var b bytes.Buffer
	b.Write(oversized)
	man, _ := json.Marshal(map[string]any{"created": "2026-11-26T12:00:00Z", "files": []string{},
		"storeBytes": 10, "storeSha256": hex.EncodeToString(small[:])})
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "backup.json", Mode: 0o600, Size: int64(len(man)), Typeflag: tar.TypeReg})
	tw.Write(man)
	tw.Close()

	for _, tc := range []struct {
		name    string
		archive []byte
		want    string
	}{
		{"sparse store of 64 MiB in a few KB", sparseArchive(64 << 20), "more than the archive"},
		{"store larger than the manifest says", b.Bytes(), "differs from the manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			handed = 0
			path := filepath.Join(t.TempDir(), "a.tar")
			is.NoErr(os.WriteFile(path, tc.archive, 0o600))
			dir := filepath.Join(t.TempDir(), "new")
			code, out := command("restore", "-data", dir, path)
			is.Equal(code, 1) // refused
			if !strings.Contains(out, tc.want) {
				t.Fatalf("the refusal does not say %q: %s", tc.want, out)
			}
			is.Equal(handed, int64(0)) // before a byte of the store was written
			_, err := os.Stat(dir)
			is.True(errors.Is(err, fs.ErrNotExist)) // nor the directory made
		})
	}
}

// TestBackupUnderLoad takes a backup of a live file store while 32 clients
// create keys, restores it into a new directory, and checks that every key
// that got a 201 before the backup started validates there, that a
// revocation and a validation record came through too.
// It needs (*filestore.Store).Backup and filestore.Restore.
func TestBackupUnderLoad(t *testing.T) {
	is := is.New(t)
	if _, ok := any(&filestore.Store{}).(interface {
		Backup(context.Context, io.Writer) error
	}); !ok || !server.CanRestore() {
		t.Skip("needs filestore Backup and Restore (the filestore branch)")
	}
	cfgPath, data := configured(t)
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "file", RateLimit: 0, RateBurst: 1,
		TokenLifetime: time.Hour})
	revokedID, revokedKey := p.create(t)
	status, _ := p.do(t, "DELETE", "/api/v1/licensing/keys/"+revokedID, "token-owner-1", "")
	is.Equal(status, 200)
	validatedID, validatedKey := p.create(t)
	status, _ = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+validatedKey+`","instanceName":"restored"}`)
	is.Equal(status, 200)

	var mu sync.Mutex
	acked := map[string]string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := 0; c < 32; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", p.url+"/api/v1/licensing/keys", strings.NewReader(`{"instanceName":"load"}`))
				req.Header.Set("Authorization", "Bearer token-owner-1")
				req.Header.Set("Content-Type", "application/json")
				res, err := p.client.Do(req)
				if err != nil {
					t.Errorf("create under load: %v", err)
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				status, raw := res.StatusCode, string(b)
				if status != 201 {
					t.Errorf("create under load: %d %s", status, raw)
					return
				}
				mu.Lock()
				acked[field(raw, "id")] = field(raw, "licenseKey")
				mu.Unlock()
			}
		}()
	}
	for n := 0; n < 100; {
		time.Sleep(10 * time.Millisecond)
		mu.Lock()
		n = len(acked)
		mu.Unlock()
	}
	mu.Lock()
	before := map[string]string{}
	for id, k := range acked {
		before[id] = k
	}
	mu.Unlock()
	archive := filepath.Join(t.TempDir(), "backup.tar")
	code, out := command("backup", "-data", data, "-o", archive)
	close(stop)
	wg.Wait()
	is.Equal(code, 0) // backup under load
	t.Logf("%d keys acknowledged before the backup, %d in all; %s", len(before), len(acked), strings.TrimSpace(out))

	restored := filepath.Join(t.TempDir(), "restored")
	code, out = command("restore", "-data", restored, archive)
	is.Equal(code, 0) // restore
	r := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: restored, StoreKind: "file", RateLimit: 0, RateBurst: 1,
		TokenLifetime: time.Hour})
	for id, key := range before {
		status, raw := r.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
		if status != 200 {
			t.Fatalf("key %s acknowledged before the backup: %d %s", id, status, raw)
		}
	}
	status, _ = r.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+revokedKey+`"}`)
	is.Equal(status, 401) // the revocation came through
	status, raw := r.do(t, "GET", "/api/v1/licensing/keys", "token-owner-1", "")
	is.Equal(status, 200)
	var list struct {
		Keys []struct {
			ID              string  `json:"id"`
			InstanceName    *string `json:"instanceName"`
			LastValidatedAt *string `json:"lastValidatedAt"`
		} `json:"keys"`
	}
	is.NoErr(json.Unmarshal([]byte(raw), &list))
	found := false
	for _, k := range list.Keys {
		if k.ID == validatedID {
			found = true
			is.True(k.LastValidatedAt != nil) // the validation record came through
		}
	}
	is.True(found)
	is.True(len(list.Keys) >= len(before)+2)
}

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
