package licensing_test

import (
	"os"
	"testing"

	"github.com/licensekit/licensing/internal/harness"
)

// TestMain removes the binaries the tests built with internal/harness
// (testdata/embedder, see embedding_test.go).
func TestMain(m *testing.M) {
	code := m.Run()
	harness.RemoveBuilds()
	os.Exit(code)
}
