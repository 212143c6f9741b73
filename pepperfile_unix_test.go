//go:build unix

package licensing_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestLoadOrCreatePepperRefusesAPipe: a named pipe at the path is refused
// at once, not waited on for a writer that may never come.
func TestLoadOrCreatePepperRefusesAPipe(t *testing.T) {
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "pepper")
	is.NoErr(syscall.Mkfifo(path, 0o600))
	_, err := licensing.LoadOrCreatePepper(path)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), path))
	is.True(strings.Contains(err.Error(), "is not a regular file"))
	fi, err := os.Lstat(path)
	is.NoErr(err)
	is.True(fi.Mode()&os.ModeNamedPipe != 0) // left as it is
}
