package server_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestTokensVerifiedOutsideGo checks an RS256 token with PHP's
// openssl_verify and an EdDSA token with Node's crypto.verify. A missing
// interpreter skips its case, except in CI.
func TestTokensVerifiedOutsideGo(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.json")
	writeConfig(t, cfgPath, "business")
	p := start(t, nil, "-config", cfgPath, "-data", filepath.Join(dir, "data"), "-rsa-signing-key", filepath.Join(dir, "rsa.pem"))
	fi, err := os.Stat(filepath.Join(dir, "rsa.pem"))
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // generated once, private
	status, created, _ := p.do(t, "POST", "/api/v1/licensing/keys", "token-owner-1", `{}`)
	is.Equal(status, 201)
	id := created["id"].(string)
	_, _, jwks := p.do(t, "GET", "/api/v1/licensing/public-keys", "", "")
	status, rs, _ := p.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt?alg=RS256", "token-owner-1", "")
	is.Equal(status, 200)
	status, ed, _ := p.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt?alg=EdDSA", "token-owner-1", "")
	is.Equal(status, 200)

	// the RSA public key as PEM, as a PHP verifier embeds it
	var doc struct{ Keys []struct{ Kty, N, E string } }
	is.NoErr(json.Unmarshal([]byte(jwks), &doc))
	var pemPath string
	for _, k := range doc.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, _ := base64.RawURLEncoding.DecodeString(k.N)
		e, _ := base64.RawURLEncoding.DecodeString(k.E)
		der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())})
		is.NoErr(err)
		pemPath = filepath.Join(dir, "rsa.pub.pem")
		is.NoErr(os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	}
	is.True(pemPath != "") // the JWKS has the RSA key

	tamper := func(tok string) string { // change the plan claim, keep the signature
		parts := strings.Split(tok, ".")
		claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), `"business"`, `"enterprise"`, 1)))
		return strings.Join(parts, ".")
	}
	tests := []struct {
		name, tool, script, token string
		env                       []string
	}{
		{"php rs256", "php", "testdata/interop/verify_rs256.php", rs["jwt"].(string), []string{"PUBKEY_PEM=" + pemPath, "ISSUER=licensing.example.com"}},
		{"node eddsa", "node", "testdata/interop/verify_eddsa.mjs", ed["jwt"].(string), []string{"JWKS=" + jwks}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			needTool(t, tc.tool, map[string]string{"node": "nodejs", "php": "php-cli"}[tc.tool])
			run := func(token string) ([]byte, error) {
				cmd := exec.Command(tc.tool, tc.script)
				cmd.Env = append(append(os.Environ(), tc.env...), "TOKEN="+token)
				return cmd.Output()
			}
			out, err := run(tc.token)
			is.NoErr(err) // the verifier accepts the token
			var claims map[string]string
			is.NoErr(json.Unmarshal(out, &claims))
			is.Equal(claims["jti"], id)
			is.Equal(claims["sub"], "org-1")
			is.Equal(claims["plan"], "business")
			_, err = run(tamper(tc.token))
			is.True(err != nil) // and rejects a tampered one
		})
	}
	t.Run("php another issuer", func(t *testing.T) {
		needTool(t, "php", "php-cli")
		// a verifier expecting another issuer refuses the token
		cmd := exec.Command("php", "testdata/interop/verify_rs256.php")
		cmd.Env = append(os.Environ(), "TOKEN="+rs["jwt"].(string), "PUBKEY_PEM="+pemPath, "ISSUER=someone-else")
		is.New(t).True(cmd.Run() != nil)
	})
}
