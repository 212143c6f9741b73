package storetest_test

import (
	"testing"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/docsnippet"
	"github.com/licensekit/licensing/storetest"
)

// openEmptyStore is the store under test: here the memory store.
func openEmptyStore(t *testing.T) licensing.Store { return licensing.NewMemoryStore() }

// TestConformance is the package doc's code, line for line: the memory
// store passes the suite.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) licensing.Store { return openEmptyStore(t) })
}

// TestPackageDocCompiles: the Go code of the package doc is code that this
// package's tests compile (TestConformance).
func TestPackageDocCompiles(t *testing.T) {
	docsnippet.Check(t, ".")
}
