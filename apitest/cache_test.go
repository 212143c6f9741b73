package apitest

// The test builds the server from the repository's root, which go test's
// result cache cannot see: importing the server's packages makes a change
// to them a change to this test binary, so a stale "ok (cached)" is
// impossible.
import (
	_ "github.com/licensekit/licensing/internal/server"
	_ "github.com/licensekit/licensing/ownerpage"
)
