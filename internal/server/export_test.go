package server

import "io"

// SetRestoreStore replaces the store restore function until the returned
// function puts the previous one back.
func SetRestoreStore(f func(r io.Reader, dir string) error) (undo func()) {
	old := restoreStore
	restoreStore = f
	return func() { restoreStore = old }
}

// CanRestore reports whether this build can restore a file store backup.
func CanRestore() bool { return restoreStore != nil }
