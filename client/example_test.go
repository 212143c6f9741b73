package client_test

import (
	"context"
	"os"
	"testing"

	"github.com/licensekit/licensing/client"
	"github.com/licensekit/licensing/internal/docsnippet"
)

// start is the package doc's code, compiled here: TestPackageDocCompiles
// holds the doc to it, line for line. publicKeys and apply are the product's.
func start(ctx context.Context, publicKeys []byte, apply func(client.License)) error {
	c, err := client.New(client.Config{
		ServerURL:  "https://licensing.example.com",
		LicenseKey: os.Getenv("LICENSE_KEY"), // a 64-hex key or an offline token
		PublicKeys: publicKeys,               // `licensing-server public-keys` (PEM) or the JWKS, embedded at build time
		Issuer:     "licensing.example.com",
		CachePath:  "/var/lib/product/license.json",
		OnChange:   apply, // the plan to apply, when it changes
	})
	if err != nil {
		return err
	}
	go c.Run(ctx) // checks now and every 24h
	return nil
}

// TestPackageDocCompiles: the Go code of the package doc is code that this
// package's tests compile (start).
func TestPackageDocCompiles(t *testing.T) {
	docsnippet.Check(t, ".")
	_ = start // compiled; running it would call the example server
}
