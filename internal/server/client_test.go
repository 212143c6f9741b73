package server_test

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/client"
)

// TestClientAgainstReferenceServer runs the self-hosted client against the
// real server binary: online, then from the cache once the server is gone,
// and an offline token whose revocation the client learns.
func TestClientAgainstReferenceServer(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	p := start(t, nil, "-config", cfgPath, "-data", filepath.Join(dir, "data"))
	_, created, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	id, key := created["id"].(string), created["licenseKey"].(string)
	_, tok, _ := p.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt", "token-owner-1", "")
	_, _, jwks := p.do(t, "GET", "/api/v1/licensing/public-keys", "", "")

	cache := filepath.Join(dir, "license.json")
	c, err := client.New(client.Config{ServerURL: p.url, LicenseKey: key, PublicKeys: []byte(jwks), CachePath: cache,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	is.NoErr(err)
	lic, err := c.Check(context.Background())
	is.NoErr(err)
	is.Equal(lic.Source, client.SourceOnline)
	is.Equal(lic.Plan, "business")

	// the PEM that `licensing-server public-keys` prints serves as well as the JWKS
	pemKeys, err := exec.Command(serverBin, "public-keys", "-data", filepath.Join(dir, "data")).Output()
	is.NoErr(err)
	pc, err := client.New(client.Config{ServerURL: p.url, LicenseKey: key, PublicKeys: pemKeys,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	is.NoErr(err) // the command's PEM is accepted
	lic, err = pc.Check(context.Background())
	is.NoErr(err) // and verifies the server's signed answer
	is.Equal(lic.Source, client.SourceOnline)

	tc, err := client.New(client.Config{ServerURL: p.url, LicenseKey: tok["jwt"].(string), PublicKeys: []byte(jwks),
		Issuer: "licensing.example.com", CachePath: filepath.Join(dir, "token.json")})
	is.NoErr(err)
	lic, err = tc.Check(context.Background())
	is.NoErr(err)
	is.Equal(lic.Source, client.SourceToken)
	status, _, _ := p.do(t, "DELETE", "/api/v1/licensing/keys/"+id, "token-owner-1", "")
	is.Equal(status, 200)
	_, err = tc.Check(context.Background())
	is.True(errors.Is(err, client.ErrRevoked)) // the token's revocation is learnt

	p.stop(t)
	lic, err = c.Check(context.Background())
	is.NoErr(err)                                          // usable:
	is.True(errors.Is(lic.Warning, client.ErrUnreachable)) // not fresh, and why
	is.Equal(lic.Source, client.SourceCache)               // within grace from the signed cache
	is.Equal(lic.Plan, "business")
}
