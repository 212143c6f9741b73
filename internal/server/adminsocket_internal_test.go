package server

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestListenPrivatePathLength: where the private detour
// (<data>/.admin-NNNNNNNNNN/s) does not fit a socket address but
// <data>/admin.sock does, listenPrivate listens at the final path, mode
// 0600.
func TestListenPrivatePathLength(t *testing.T) {
	is := is.New(t)
	base := t.TempDir()
	// A data directory whose admin.sock path is 100 bytes long.
	pad := 100 - len(base) - len("/admin.sock") - 1
	if pad < 1 {
		t.Skip("temp dir too long")
	}
	data := filepath.Join(base, strings.Repeat("d", pad))
	is.NoErr(os.Mkdir(data, 0o700))
	path := filepath.Join(data, AdminSocket)
	t.Logf("socket path %d bytes", len(path))

	ln, err := net.Listen("unix", path) // the plain listen works
	is.NoErr(err)
	ln.Close()
	os.Remove(path)

	ln, err = listenPrivate(path)
	is.NoErr(err) // so must the private one
	if ln != nil {
		ln.Close()
	}
}
