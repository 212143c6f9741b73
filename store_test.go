package licensing_test

import (
	"testing"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) licensing.Store { return licensing.NewMemoryStore() })
}
