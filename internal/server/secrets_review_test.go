package server_test

import (
	"context"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// TestReviewLostRSAKeyAndRecord (review): the file store holds keys and an
// RS256 token (the default algorithm) was issued; signing-rsa.pem and
// signing-keys.json are lost (the Ed25519 key stays). The server starts,
// makes a new RSA key with a new kid and publishes only that one: every
// RS256 token issued before stops verifying. Expected: refuse to start
// without -rotate-signing-keys, as it does when the Ed25519 key and the
// record are lost (secrets.go: the !recorded check covers AlgEdDSA only).
func TestReviewLostRSAKeyAndRecord(t *testing.T) {
	is := is.New(t)
	cfg, data, _ := withKey(t, nil)
	p := start(t, nil, "-config", cfg, "-data", data)
	before := kidsOf(t, p)
	p.stop(t)
	is.NoErr(os.Remove(filepath.Join(data, "signing-rsa.pem")))
	is.NoErr(os.Remove(filepath.Join(data, "signing-keys.json")))
	line := refusedOrStarted(t, nil, "-config", cfg, "-data", data)
	if line == "" {
		p = start(t, nil, "-config", cfg, "-data", data)
		after := kidsOf(t, p)
		t.Errorf("server started with a new RSA signing key: kids before %v, after %v (the old RS256 kid is no longer published)", before, after)
	}
}

// refusedOrStarted runs the binary; "" when it started and listened (then
// it is stopped), else its last line of output.
func refusedOrStarted(t *testing.T, env []string, args ...string) string {
	t.Helper()
	p, up := spawn(t, env, args...)
	if up {
		p.stop(t)
		return ""
	}
	lines := strings.Split(strings.TrimSpace(p.logs.String()), "\n")
	return lines[len(lines)-1]
}

// pgLike is a persistent store that lives outside the data directory, as
// pgstore does: it remembers its pepper fingerprint and its keys.
type pgLike struct {
	*licensing.MemoryStore
	fp string
}

func (s *pgLike) CheckPepper(ctx context.Context, fp string) error {
	if s.fp == "" {
		s.fp = fp
	}
	if s.fp != fp {
		return licensing.ErrPepperMismatch
	}
	return nil
}

// TestReviewExternalStoreWithNewDataDir (review): with a store that lives
// outside the data directory (pgstore, registered through Main.Stores), the
// data directory is lost (a container without a volume, a new host) while
// the database keeps its keys and LICENSING_PEPPER stays set. The server
// starts, generates new signing keys and publishes only them: every token
// and every cached signed answer of deployed clients stops verifying,
// silently. Expected: refuse, as for the file store (storeHadData is
// computed for the file store only, startup.go start).
func TestReviewExternalStoreWithNewDataDir(t *testing.T) {
	is := is.New(t)
	cfg, _ := configured(t)
	pep := hex.EncodeToString([]byte(strings.Repeat("p", 32)))
	shared := &pgLike{MemoryStore: licensing.NewMemoryStore()}
	run := func(data string) (*inproc, []string) {
		m := &server.Main{ConfigPath: cfg, DataDir: data, StoreKind: "pg", TokenLifetime: 3600e9,
			SigningKeyOverlap: 3600e9,
			Getenv: func(k string) string {
				if k == "LICENSING_PEPPER" {
					return pep
				}
				return ""
			},
			Stores: map[string]func(context.Context) (licensing.Store, io.Closer, error){
				"pg": func(context.Context) (licensing.Store, io.Closer, error) { return shared, nil, nil },
			}}
		p := runMain(t, m)
		status, raw := p.do(t, "GET", "/api/v1/licensing/public-keys", "", "")
		is.Equal(status, 200)
		var kids []string
		for _, part := range strings.Split(raw, `"kid":"`)[1:] {
			kids = append(kids, part[:strings.IndexByte(part, '"')])
		}
		return p, kids
	}
	p1, kids1 := run(filepath.Join(t.TempDir(), "data1"))
	id, _ := p1.create(t)
	status, tok := p1.do(t, "POST", "/api/v1/licensing/keys/"+id+"/jwt", "token-owner-1", "")
	is.Equal(status, 200) // a token was issued
	_ = tok
	p1.cancel()

	_, kids2 := run(filepath.Join(t.TempDir(), "data2")) // the same database, a new data directory
	for _, k := range kids1 {
		if !strings.Contains(strings.Join(kids2, " "), k) {
			t.Errorf("the store holds keys and issued tokens, but the server started with new signing keys: kids %v became %v", kids1, kids2)
			break
		}
	}
}
