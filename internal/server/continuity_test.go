package server_test

import (
	"context"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/harness"
	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// TestLostSigningKeyAndRecord: the file store holds keys, and a signing key
// is lost together with signing-keys.json (rm <data>/signing-rsa.pem
// <data>/signing-keys.json, the Ed25519 key kept, or the other way round).
// The start is refused, naming the file and the flag; with
// -rotate-signing-keys it starts with a new key for that algorithm only.
func TestLostSigningKeyAndRecord(t *testing.T) {
	for _, lost := range []string{"signing-rsa.pem", "signing-ed25519.pem"} {
		t.Run(lost, func(t *testing.T) {
			is := is.New(t)
			cfg, data, _ := withKey(t, nil)
			p := start(t, nil, "-config", cfg, "-data", data)
			before := kidsOf(t, p)
			p.stop(t)
			is.NoErr(os.Remove(filepath.Join(data, lost)))
			is.NoErr(os.Remove(filepath.Join(data, "signing-keys.json")))
			line := refusedOrStarted(t, nil, "-config", cfg, "-data", data)
			is.True(strings.Contains(line, filepath.Join(data, lost))) // names the lost file
			is.True(strings.Contains(line, "-rotate-signing-keys"))    // and the way out
			_, err := os.Stat(filepath.Join(data, lost))
			is.True(os.IsNotExist(err)) // the refused start made no key

			p = start(t, nil, "-config", cfg, "-data", data, "-rotate-signing-keys")
			after := kidsOf(t, p)
			kept := 0
			for _, k := range before {
				if slices.Contains(after, k) {
					kept++
				}
			}
			is.Equal(kept, 1) // the surviving key's kid is still published
		})
	}
}

// refusedOrStarted runs the binary; "" when it started and listened (then
// it is stopped), else its last line of output.
func refusedOrStarted(t *testing.T, env []string, args ...string) string {
	t.Helper()
	p, up := spawn(t, env, args...)
	if up {
		p.stop(t)
		return ""
	}
	lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
	return lines[len(lines)-1]
}

// pgLike is a persistent store that lives outside the data directory, as
// pgstore does: it remembers its pepper fingerprint and its keys.
type pgLike struct {
	*licensing.MemoryStore
	fp string
}

func (s *pgLike) CheckPepper(ctx context.Context, fp string) error {
	if s.fp == "" {
		s.fp = fp
	}
	if s.fp != fp {
		return licensing.ErrPepperMismatch
	}
	return nil
}

// TestExternalStoreWithNewDataDir: a store that lives outside the data
// directory (pgstore, registered through Main.Stores) keeps its keys while
// the data directory is lost (a container without a volume, a new host)
// and LICENSING_PEPPER stays set. The start is refused rather than sign
// with new keys that no deployed client trusts; -rotate-signing-keys starts
// it. A new data directory over a store without keys starts as a first
// start.
func TestExternalStoreWithNewDataDir(t *testing.T) {
	is := is.New(t)
	cfg, _ := configured(t)
	pep := hex.EncodeToString([]byte(strings.Repeat("p", 32)))
	shared := &pgLike{MemoryStore: licensing.NewMemoryStore()}
	main := func(data string, rotate bool) *server.Main {
		return &server.Main{ConfigPath: cfg, DataDir: data, StoreKind: "pg", TokenLifetime: time.Hour,
			SigningKeyOverlap: time.Hour, RotateSigningKeys: rotate,
			Getenv: func(k string) string {
				if k == "LICENSING_PEPPER" {
					return pep
				}
				return ""
			},
			Stores: map[string]func(context.Context) (licensing.Store, io.Closer, error){
				"pg": func(context.Context) (licensing.Store, io.Closer, error) { return shared, nil, nil },
			}}
	}
	p1 := runMain(t, main(filepath.Join(t.TempDir(), "data1"), false)) // no keys yet: a first start
	id, _ := p1.create(t)
	status, _ := p1.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt", "token-owner-1", "")
	is.Equal(status, 200) // a token was issued
	p1.cancel()

	data2 := filepath.Join(t.TempDir(), "data2") // the same database, a new data directory
	var logs harness.Buffer
	m := main(data2, false)
	m.Addr, m.Stderr = "127.0.0.1:0", &logs
	err := m.Run(context.Background(), make(chan os.Signal, 1))
	is.True(err != nil)                                                    // refused
	is.True(strings.Contains(err.Error(), "the store already holds keys")) // saying why
	is.True(strings.Contains(err.Error(), "-rotate-signing-keys"))         // and the way out

	runMain(t, main(data2, true)) // the operator asks for new keys
}

// TestLostStoreRefusesToStart: a data directory that issued keys records
// it (keys-issued.json, with the first key's id). A start where the store
// is missing (a volume that did not mount), empty, or another store is
// refused, naming the record and how to start over; nothing is created in
// the store's place. Removing the record starts over on purpose.
func TestLostStoreRefusesToStart(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfg, data := filepath.Join(dir, "config.json"), filepath.Join(dir, "data")
	writeConfig(t, cfg, "business")
	p := start(t, nil, "-config", cfg, "-data", data)
	marker := filepath.Join(data, "keys-issued.json")
	_, err := os.Stat(marker)
	is.True(os.IsNotExist(err)) // a first start issued nothing yet
	status, created, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	is.Equal(status, 201)
	key, id := created["licenseKey"].(string), created["id"].(string)
	b, err := os.ReadFile(marker)
	is.NoErr(err)                            // written by the first key, before its 201
	is.True(strings.Contains(string(b), id)) // naming it
	p.stop(t)

	store := filepath.Join(data, "store")
	away := filepath.Join(dir, "store-away")
	is.NoErr(os.Rename(store, away))
	other := filepath.Join(t.TempDir(), "other") // a store of another deployment, without the key
	start(t, nil, "-config", cfg, "-data", other).stop(t)
	tests := []struct {
		name  string
		setup func(t *testing.T)
		want  string
	}{
		{"missing", func(t *testing.T) {}, "the store directory " + store + " is missing"},
		{"empty", func(t *testing.T) { is.NoErr(os.Mkdir(store, 0o700)) }, "the store directory " + store + " is empty"},
		{"another store", func(t *testing.T) { is.NoErr(os.Rename(filepath.Join(other, "store"), store)) }, "the store " + store + " does not hold that key"},
		{"a file in its place", func(t *testing.T) { is.NoErr(os.WriteFile(store, nil, 0o600)) }, "the store " + store + " is not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			os.RemoveAll(store)
			tc.setup(t)
			before := treeOf(t, store)
			line := refusedOrStarted(t, nil, "-config", cfg, "-data", data)
			is.True(line != "")                                                  // refused
			is.True(strings.Contains(line, tc.want))                             // names what is missing
			is.True(strings.Contains(line, "every issued key would answer 401")) // and what it would cost
			is.True(strings.Contains(line, "remove "+marker))                    // and how to start over
			is.Equal(treeOf(t, store), before)                                   // nothing was written to the store, or created in its place
		})
	}

	is.NoErr(os.RemoveAll(store))
	is.NoErr(os.Rename(away, store)) // the volume mounts again
	p = start(t, nil, "-config", cfg, "-data", data)
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 200) // every key is back
	p.stop(t)

	is.NoErr(os.Remove(marker)) // a directory from before the record: the store says keys were issued
	start(t, nil, "-config", cfg, "-data", data).stop(t)
	b, err = os.ReadFile(marker)
	is.NoErr(err) // written again at start
	is.True(strings.Contains(string(b), id))

	is.NoErr(os.RemoveAll(store)) // starting over on purpose: the documented step
	is.NoErr(os.Remove(marker))
	p = start(t, nil, "-config", cfg, "-data", data)
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"`+key+`"}`)
	is.Equal(status, 401) // the old keys are gone, as asked
	status, _, _ = p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	is.Equal(status, 201) // and the new store issues keys
	_, err = os.Stat(marker)
	is.NoErr(err)

	t.Run("the memory store is exempt", func(t *testing.T) {
		p.stop(t)
		start(t, nil, "-config", cfg, "-data", data, "-store", "memory").stop(t)
	})
}

// TestExternalStoreLostUnderADataDir: a store that lives outside the data
// directory (pgstore) and is replaced by an empty one (a new database, a
// wrong DSN) while the data directory recorded issued keys is refused too,
// before the store records anything.
func TestExternalStoreLostUnderADataDir(t *testing.T) {
	is := is.New(t)
	cfg, _ := configured(t)
	data := filepath.Join(t.TempDir(), "data")
	shared := &pgLike{MemoryStore: licensing.NewMemoryStore()}
	main := func() *server.Main {
		return &server.Main{ConfigPath: cfg, DataDir: data, StoreKind: "pg", TokenLifetime: time.Hour,
			SigningKeyOverlap: time.Hour, Getenv: func(string) string { return "" },
			Stores: map[string]func(context.Context) (licensing.Store, io.Closer, error){
				"pg": func(context.Context) (licensing.Store, io.Closer, error) { return shared, nil, nil },
			}}
	}
	p := runMain(t, main())
	p.create(t)
	p.stop(t)

	shared = &pgLike{MemoryStore: licensing.NewMemoryStore()} // an empty database
	m := main()
	logs := &harness.Buffer{}
	m.Addr, m.Stderr = "127.0.0.1:0", logs
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, make(chan os.Signal, 1)) }()
	var err error
	for err == nil {
		select {
		case err = <-done:
		case <-time.After(10 * time.Millisecond):
			if _, up := harness.ListenAddr(logs.String()); up {
				cancel()
				t.Fatal("the server started over an empty store")
			}
		}
	}
	is.True(strings.Contains(err.Error(), "the store (-store pg) does not hold that key"))
	is.True(strings.Contains(err.Error(), "remove "+filepath.Join(data, "keys-issued.json")))
	is.Equal(shared.fp, "") // the empty database recorded no pepper
}

// TestDamagedIssuedRecordRefusesToStart: a keys-issued.json that is empty,
// not the record, a directory or far larger than any record is refused,
// naming the file and how to go on (restore it, or remove it), and is
// never read whole.
func TestDamagedIssuedRecordRefusesToStart(t *testing.T) {
	_, data, _ := withKey(t, nil)
	marker := filepath.Join(data, "keys-issued.json")
	tests := []struct {
		name  string
		setup func(t *testing.T)
		want  string
	}{
		{"empty", func(t *testing.T) { mustWrite(t, marker, "") }, "unexpected end of JSON input"},
		{"null", func(t *testing.T) { mustWrite(t, marker, "null\n") }, "keyId: not a key id"},
		{"a directory", func(t *testing.T) {
			if err := os.Mkdir(marker, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "is a directory"},
		{"huge", func(t *testing.T) {
			mustWrite(t, marker, "")
			if err := os.Truncate(marker, 64<<20); err != nil { // sparse: 64 MiB of zeros
				t.Fatal(err)
			}
		}, "is larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			os.RemoveAll(marker)
			tc.setup(t)
			line := refusedOrStarted(t, nil, "-data", data)
			t.Log(line)
			is.True(strings.HasPrefix(line, "licensing-server: "+marker)) // names the file
			is.True(strings.Contains(line, tc.want))                      // and what is wrong with it
			is.True(strings.Contains(line, "remove it to start over"))    // and how to go on
		})
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// treeOf returns the names and contents of path's files (path itself when
// it is a file), or nil when path does not exist.
func treeOf(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[p] = "(directory)"
			return nil
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}
