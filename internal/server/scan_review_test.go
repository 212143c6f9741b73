package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/matryer/is"
)

// Review (review5): the scanner's output "can go into CI logs" because it
// never holds a full key (internal/scan package doc, "Security"). A file or
// directory named after a key (a per-key cache or export file, a key saved
// as its own name) is printed with its path in full, so the key lands in
// the CI log the scanner was meant to protect; the name itself is not even
// reported as a leak.
func TestReviewScanPrintsKeyInPath(t *testing.T) {
	is := is.New(t)
	named, _ := licensing.GenerateKey(nil)
	inside, _ := licensing.GenerateKey(nil)
	dir := t.TempDir()
	sub := filepath.Join(dir, "licenses", named)
	is.NoErr(os.MkdirAll(sub, 0o755))
	is.NoErr(os.WriteFile(filepath.Join(sub, "license.env"), []byte("KEY="+inside+"\n"), 0o644))
	out, _ := exec.Command(serverBin, "scan", dir).CombinedOutput()
	is.True(strings.Contains(string(out), licensing.MaskKey(inside))) // the key in the file is found
	is.True(!strings.Contains(string(out), named))                    // the key in the path is never printed in full
}
