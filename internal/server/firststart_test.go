package server_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/licensekit/licensing/filestore"
	"github.com/matryer/is"
)

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
