//go:build !linux

package atomicfile

// createUnnamed reports that this system has no unnamed temporary files:
// Create uses a named one.
func createUnnamed(path string, data []byte) (ok bool, err error) { return false, nil }
