package main

import (
	"os"
	"path/filepath"

	"github.com/licensekit/licensing/internal/harness"
)

// ownerToken is the owner's bearer token in every configuration loadgen writes.
const ownerToken = "loadgen-owner-token"

// workspace is what every route's run starts from: a temporary directory,
// the reference server built once, and a configuration (writeConfig) whose
// owner signs in with ownerToken.
type workspace struct {
	tmp, bin, cfg string
}

// newWorkspace makes a workspace; cleanup removes the directory and the build.
func newWorkspace() (w workspace, cleanup func(), err error) {
	if w.tmp, err = os.MkdirTemp("", "loadgen-"); err != nil {
		return w, nil, err
	}
	cleanup = func() { os.RemoveAll(w.tmp) }
	if w.bin, err = harness.Build(harness.ServerCmd); err != nil {
		cleanup()
		return w, nil, err
	}
	cleanup = func() { os.RemoveAll(w.tmp); harness.RemoveBuilds() }
	w.cfg = filepath.Join(w.tmp, "config.json")
	if err := writeConfig(w.cfg, ownerToken); err != nil {
		cleanup()
		return w, nil, err
	}
	return w, cleanup, nil
}
