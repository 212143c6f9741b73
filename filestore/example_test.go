package filestore_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/licensekit/licensing/filestore"
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
