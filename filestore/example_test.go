package filestore_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
	"github.com/licensekit/licensing/internal/docsnippet"
	"github.com/licensekit/licensing/storetest"
)

// Back up a running store to a stream, and restore it into a new directory.
func ExampleStore_Backup() {
	tmp, err := os.MkdirTemp("", "filestore-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()

	st, err := filestore.Open(filepath.Join(tmp, "live"), filestore.Options{PepperFingerprint: "fingerprint-of-the-pepper"})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	key := storetest.NewKey("org-1", time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	if err := st.CreateKey(ctx, key); err != nil {
		log.Fatal(err)
	}

	var backup bytes.Buffer // a file, or an HTTP response, in real use
	if err := st.Backup(ctx, &backup); err != nil {
		log.Fatal(err)
	}
	if err := filestore.Restore(&backup, filepath.Join(tmp, "restored")); err != nil {
		log.Fatal(err)
	}
	restored, err := filestore.Open(filepath.Join(tmp, "restored"), filestore.Options{PepperFingerprint: "fingerprint-of-the-pepper"})
	if err != nil {
		log.Fatal(err)
	}
	defer restored.Close()
	got, err := restored.KeyByID(ctx, key.ID)
	fmt.Println(err, got.OrganizationID, got.Active)
	// Output: <nil> org-1 true
}

// openDurable is the package doc's code, compiled here:
// TestPackageDocCompiles holds the doc to it, line for line.
func openDurable(ctx context.Context, dir string, myOrgs licensing.Organizations) error {
	pepper, err := licensing.LoadOrCreatePepper(filepath.Join(dir, "pepper")) // such as /var/lib/licensing
	if err != nil {
		return err
	}
	st, err := filestore.Open(filepath.Join(dir, "store"), filestore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := licensing.New(licensing.Config{Store: st, Organizations: myOrgs, Pepper: pepper,
		Policy: licensing.Policy{Issuer: "licensing.example.com"}}) // refuses another pepper's store
	if err != nil {
		return err
	}
	return svc.Close(ctx)
}

// TestPackageDocCompiles: the Go code of the package doc is code that this
// package's tests compile (openDurable), and it runs.
func TestPackageDocCompiles(t *testing.T) {
	docsnippet.Check(t, ".")
	orgs := licensing.OrganizationsFunc(func(context.Context, string) (licensing.Organization, error) {
		return licensing.Organization{}, licensing.ErrOrgNotFound
	})
	if err := openDurable(context.Background(), t.TempDir(), orgs); err != nil {
		t.Fatal(err)
	}
}
