package server

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
)

var (
	archiveOnce sync.Once
	goodArchive []byte // a backup as writeBackup makes it, of the template state and a file store
)

// validArchive returns a backup of the template state directory with a
// real file store in it.
func validArchive(tb testing.TB) []byte {
	archiveOnce.Do(func() {
		dir := tb.TempDir()
		for name, b := range template(tb) {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				panic(err)
			}
		}
		pep, err := hex.DecodeString(strings.TrimSpace(string(template(tb)["pepper"])))
		if err != nil {
			panic(err)
		}
		st, err := filestore.Open(filepath.Join(dir, "store"), filestore.Options{Logger: slog.New(slog.DiscardHandler),
			PepperFingerprint: licensing.PepperFingerprint(pep)})
		if err != nil {
			panic(err)
		}
		var store bytes.Buffer
		err = st.Backup(context.Background(), &store)
		st.Close()
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(store.Bytes())
		var out bytes.Buffer
		if _, err := writeArchive(&out, dir, bytes.NewReader(store.Bytes()), int64(store.Len()), hex.EncodeToString(sum[:]),
			time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)); err != nil {
			panic(err)
		}
		goodArchive = out.Bytes()
	})
	return goodArchive
}

// tarEntry is one entry of a hand-made archive.
type tarEntry struct {
	hdr  tar.Header
	body []byte
}

// entries reads an archive that is known to be whole.
func entries(tb testing.TB, archive []byte) []tarEntry {
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			tb.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, tarEntry{*h, b})
	}
}

// build writes entries as an archive; edit may change each (nil: drop it).
func build(es []tarEntry, edit func(e *tarEntry) *tarEntry) []byte {
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, e := range es {
		e.body = append([]byte(nil), e.body...)
		p := &e
		if edit != nil {
			p = edit(p)
		}
		if p == nil {
			continue
		}
		p.hdr.Size = int64(len(p.body))
		if p.hdr.Typeflag != tar.TypeReg {
			p.hdr.Size = 0
			p.body = nil
		}
		tw.WriteHeader(&p.hdr)
		tw.Write(p.body)
	}
	tw.Close()
	return out.Bytes()
}

// editManifest rewrites the manifest entry through f.
func editManifest(f func(m map[string]any)) func(e *tarEntry) *tarEntry {
	return func(e *tarEntry) *tarEntry {
		if e.hdr.Name == manifestEntry {
			var m map[string]any
			json.Unmarshal(e.body, &m)
			f(m)
			e.body, _ = json.Marshal(m)
		}
		return e
	}
}

// archiveSeeds are a whole backup, one of an earlier build (no file
// checksums), then cut, damaged and hostile ones.
func archiveSeeds(tb testing.TB) [][]byte {
	good := validArchive(tb)
	es := entries(tb, good)
	renamed := func(from, to string, typ byte) []byte {
		return build(es, func(e *tarEntry) *tarEntry {
			if e.hdr.Name == from {
				e.hdr.Name, e.hdr.Typeflag, e.hdr.Linkname = to, typ, "/etc/passwd"
			}
			return e
		})
	}
	return [][]byte{
		good,
		build(es, editManifest(func(m map[string]any) { delete(m, "fileSha256") })),
		good[:len(good)-1024-512], // the manifest cut off
		good[:len(good)/2],
		good[:700],
		build(es, func(e *tarEntry) *tarEntry { // a byte of the pepper changed
			if e.hdr.Name == "pepper" {
				e.body[0] ^= 1
			}
			return e
		}),
		build(es, func(e *tarEntry) *tarEntry { // the RSA key left out
			if e.hdr.Name == "signing-rsa.pem" {
				return nil
			}
			return e
		}),
		build(es, editManifest(func(m map[string]any) { m["files"] = []string{"pepper"} })),
		build(es, editManifest(func(m map[string]any) { m["files"] = append(m["files"].([]any), "pepper") })),
		renamed("demo.json", "../demo.json", tar.TypeReg),
		renamed("demo.json", "/tmp/demo.json", tar.TypeReg),
		renamed("demo.json", "demo.json", tar.TypeSymlink),
		renamed("demo.json", "demo.json", tar.TypeLink),
		renamed("demo.json", "store/", tar.TypeDir),
		build(append(es[:1:1], es...), nil),         // an entry twice
		build(append(slices.Clone(es), es[0]), nil), // an entry after the manifest
		build(es, func(e *tarEntry) *tarEntry { // no store
			if e.hdr.Name == storeEntry {
				return nil
			}
			return e
		}),
		build(es, editManifest(func(m map[string]any) { m["storeBytes"] = -1 })),
		build(es, func(e *tarEntry) *tarEntry {
			if e.hdr.Name == manifestEntry {
				e.body = []byte(`{"files":`)
			}
			return e
		}),
		[]byte("not a tar"), nil,
	}
}

// checkRestore is the property of an archive given to restore: it never
// panics and writes nowhere but the new data directory; a refusal says
// "restore: " and leaves the directory empty; an accepted archive leaves
// exactly the files its manifest lists, each as the archive holds it, and a
// store that opens.
func checkRestore(t *testing.T, archive []byte) error {
	t.Helper()
	parent := t.TempDir()
	path, data := filepath.Join(parent, "a.tar"), filepath.Join(parent, "data")
	if err := os.WriteFile(path, archive, 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Main{Stderr: io.Discard, Getenv: func(string) string { return "" }}
	err := m.restoreCommand([]string{"-data", data, path})
	around, _ := os.ReadDir(parent)
	for _, e := range around {
		if e.Name() != "a.tar" && e.Name() != "data" {
			t.Fatalf("restore wrote %s, outside the data directory", e.Name())
		}
	}
	left, _ := os.ReadDir(data)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "restore: ") {
			t.Fatalf("refusal %q does not say it is the restore's", err)
		}
		if len(left) > 0 {
			t.Fatalf("a refused restore left %s in the data directory", left[0].Name())
		}
		return err
	}
	es := entries(t, archive)
	var man manifest
	want := map[string][]byte{}
	for _, e := range es {
		switch e.hdr.Name {
		case manifestEntry:
			json.Unmarshal(e.body, &man)
		case storeEntry:
		default:
			want[e.hdr.Name] = e.body
		}
	}
	if len(want) != len(man.Files) {
		t.Fatalf("restored files %d, the manifest lists %v", len(want), man.Files)
	}
	for _, e := range left {
		switch b, err := os.ReadFile(filepath.Join(data, e.Name())); {
		case e.Name() == storeEntry:
		case err != nil || !bytes.Equal(b, want[e.Name()]) || !slices.Contains(man.Files, e.Name()):
			t.Fatalf("restored %s is not the archive's (listed: %v)", e.Name(), slices.Contains(man.Files, e.Name()))
		}
	}
	if len(left) != len(want)+1 {
		t.Fatalf("restored %d entries, want the %d files and the store", len(left), len(want))
	}
	st, err := filestore.Open(filepath.Join(data, storeEntry), filestore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("the restored store does not open: %v", err)
	}
	st.Close()
	return nil
}

// FuzzRestore feeds arbitrary archives to the restore command: see
// checkRestore for the property.
func FuzzRestore(f *testing.F) {
	if !CanRestore() {
		f.Skip("this build's file store cannot restore a backup")
	}
	for _, s := range archiveSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, archive []byte) {
		if len(archive) > 1<<20 {
			return
		}
		checkRestore(t, archive)
	})
}

// TestRestoreHardCases: the seeds, with the refusal each must give, so
// that a plain go test covers them.
func TestRestoreHardCases(t *testing.T) {
	if !CanRestore() {
		t.Skip("this build's file store cannot restore a backup")
	}
	seeds := archiveSeeds(t)
	tests := []struct {
		name string
		want string // in the refusal; "" for none
	}{
		{"whole", ""},
		{"an earlier build's, without file checksums", ""},
		{"the manifest cut off", "cut short"},
		{"cut in half", "restore: "},
		{"cut in the first entry", "restore: "},
		{"a byte of the pepper changed", `entry "pepper" differs from the manifest`},
		{"the RSA key left out", `lists "signing-rsa.pem"`},
		{"the manifest lists one file", "is not in the manifest"},
		{"the manifest lists the pepper twice", `lists "pepper"`},
		{"a parent path", `unexpected entry "../demo.json"`},
		{"an absolute path", `unexpected entry "/tmp/demo.json"`},
		{"a symlink", `unexpected entry "demo.json"`},
		{"a hard link", `unexpected entry "demo.json"`},
		{"a directory", `unexpected entry "store/"`},
		{"an entry twice", "unexpected entry"},
		{"an entry after the manifest", "after the manifest"},
		{"no store", "no store entry"},
		{"the store's size edited", "differs from the manifest"},
		{"the manifest cut", "manifest: "},
		{"not a tar", "restore: "},
		{"empty", "cut short"},
	}
	is := is.New(t)
	is.Equal(len(tests), len(seeds)) // every seed is a case
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			err := checkRestore(t, seeds[i])
			if tc.want == "" {
				is.NoErr(err)
				return
			}
			is.True(err != nil) // refused
			if err != nil {
				is.True(strings.Contains(err.Error(), tc.want)) // with the expected reason
			}
		})
	}
}

// TestUnfinishedRestoreRefusesToStart: while restore fills the directory it
// holds RESTORING (so a restore cut short by a crash leaves it), a start on
// such a directory refuses naming it, and a finished restore removes it.
func TestUnfinishedRestoreRefusesToStart(t *testing.T) {
	is := is.New(t)
	if !CanRestore() {
		t.Skip("this build's file store cannot restore a backup")
	}
	data := filepath.Join(t.TempDir(), "data")
	sawMarker := false
	real := restoreStore
	undo := SetRestoreStore(func(r io.Reader, dir string) error {
		_, err := os.Stat(filepath.Join(filepath.Dir(dir), restoreMarker))
		sawMarker = err == nil
		return real(r, dir)
	})
	defer undo()
	path := filepath.Join(t.TempDir(), "a.tar")
	is.NoErr(os.WriteFile(path, validArchive(t), 0o600))
	m := &Main{Stderr: io.Discard, Getenv: func(string) string { return "" }}
	is.NoErr(m.restoreCommand([]string{"-data", data, path}))
	is.True(sawMarker) // the marker is there while the store is restored
	_, err := os.Stat(filepath.Join(data, restoreMarker))
	is.True(os.IsNotExist(err)) // and gone once the restore is whole

	is.NoErr(os.WriteFile(filepath.Join(data, restoreMarker), nil, 0o600)) // as a crash leaves it
	s := stateMain(data)
	s.StoreKind = "memory"
	_, err = s.start(context.Background())
	s.unlock()
	is.True(err != nil) // refused
	if err != nil {
		is.True(strings.Contains(err.Error(), "unfinished restore")) // saying why
		is.True(strings.Contains(err.Error(), data))                 // and where
	}
}
