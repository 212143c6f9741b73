package webhook_test

import (
	"os"
	"testing"

	"github.com/licensekit/licensing/internal/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.RemoveBuilds() // the Node receiver's installation
	os.Exit(code)
}
