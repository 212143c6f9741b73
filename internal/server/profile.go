package server

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile to the file named by
// LICENSING_CPU_PROFILE, when it is set, until the returned function is
// called (at shutdown). It is for the load harness (internal/cmd/loadgen
// -profile) and for operators chasing a slow server; it serves nothing.
func (m *Main) startProfile() (stop func(), err error) {
	path := m.Getenv("LICENSING_CPU_PROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("LICENSING_CPU_PROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("LICENSING_CPU_PROFILE: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
