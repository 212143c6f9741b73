package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/keyfile"
	"github.com/matryer/is"
)

// stateFiles are the files of the state directory that the server reads
// as it starts, in the order FuzzStateFiles picks them.
var stateFiles = []string{"signing-keys.json", "signing-ed25519.pem", "signing-rsa.pem", "pepper", "demo.json"}

var (
	stateOnce     sync.Once
	stateTemplate map[string][]byte // a whole state directory, as a first start leaves it
	retiredPEMs   []string          // an Ed25519, an RSA-2048, an RSA-1024 and a P-256 public key
	rsa1024PEM    []byte            // the RSA-1024 private key
)

// stateMain is a Main on dir, as the state loaders need it.
func stateMain(dir string) *Main {
	return &Main{DataDir: dir, Getenv: func(string) string { return "" }, SigningKeyOverlap: 24 * time.Hour,
		logger: slog.New(slog.DiscardHandler)}
}

// template makes a state directory once: signing keys and their record, a
// pepper, a demo organization.
func template(tb testing.TB) map[string][]byte {
	stateOnce.Do(func() {
		dir := tb.TempDir()
		m := stateMain(dir)
		if _, err := m.signingKeys(true); err != nil {
			panic(err)
		}
		p, err := m.loadPepper()
		if err == nil {
			err = p.save()
		}
		if err != nil {
			panic(err)
		}
		_, announce, err := m.demoConfig()
		if err != nil {
			panic(err)
		}
		m.Stderr = &bytes.Buffer{}
		if err := announce(); err != nil {
			panic(err)
		}
		stateTemplate = map[string][]byte{}
		for _, name := range stateFiles {
			if stateTemplate[name], err = os.ReadFile(filepath.Join(dir, name)); err != nil {
				panic(err)
			}
		}
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		r2048, _ := rsa.GenerateKey(rand.Reader, 2048)
		r1024, _ := rsa.GenerateKey(rand.Reader, 1024)
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if rsa1024PEM, err = keyfile.Marshal(r1024); err != nil {
			panic(err)
		}
		for _, pub := range []any{ed.Public(), &r2048.PublicKey, &r1024.PublicKey, &ec.PublicKey} {
			s, err := publicPEM(pub)
			if err != nil {
				panic(err)
			}
			retiredPEMs = append(retiredPEMs, s)
		}
	})
	return stateTemplate
}

// stateSeeds are (file index, contents) pairs: each file as the server
// wrote it, then damaged and hostile versions.
func stateSeeds(tb testing.TB) []struct {
	which uint8
	data  []byte
} {
	tpl := template(tb)
	var rec signingRecord
	if err := json.Unmarshal(tpl["signing-keys.json"], &rec); err != nil {
		tb.Fatal(err)
	}
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	withRetired := func(pemText, kid string, until *time.Time) []byte {
		r := rec
		r.Retired = []recordedKey{{KID: kid, Alg: "EdDSA", PublicKey: pemText, Since: past, RetiredAt: &past, Until: until}}
		b, _ := json.Marshal(r)
		return b
	}
	otherKID := rec
	otherKID.Keys = append([]recordedKey(nil), rec.Keys...)
	otherKID.Keys[0].KID = "not-the-key"
	okb, _ := json.Marshal(otherKID)
	privateUnderPublic := strings.ReplaceAll(string(tpl["signing-ed25519.pem"]), "PRIVATE KEY", "PUBLIC KEY")
	out := []struct {
		which uint8
		data  []byte
	}{}
	add := func(which uint8, data string) {
		out = append(out, struct {
			which uint8
			data  []byte
		}{which, []byte(data)})
	}
	for i, name := range stateFiles {
		add(uint8(i), string(tpl[name]))
	}
	add(0, string(withRetired(retiredPEMs[0], "old-ed", &until)))
	add(0, string(withRetired(retiredPEMs[1], "old-rsa", &until)))
	add(0, string(withRetired(retiredPEMs[2], "old-rsa-1024", &until)))
	add(0, string(withRetired(retiredPEMs[3], "old-p256", &until)))
	add(0, string(withRetired("not PEM", "broken", &until)))
	add(0, string(withRetired(privateUnderPublic, "private", &until)))
	add(0, string(withRetired(retiredPEMs[0], "expired", &past)))
	add(0, string(withRetired(retiredPEMs[0], "no-until", nil)))
	add(0, string(okb))
	add(0, `{"keys":null,"retired":null}`)
	add(0, `{"keys":[{"kid":"x","alg":"EdDSA"},{"kid":"y","alg":"EdDSA"}]}`)
	add(0, `[]`)
	add(0, ``)
	add(1, string(tpl["signing-rsa.pem"])) // the keys swapped
	add(2, string(tpl["signing-ed25519.pem"]))
	add(1, privateUnderPublic)
	add(2, "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
	add(3, strings.Repeat("ab", 31))
	add(3, strings.Repeat("ab", 4096))
	add(3, "zz")
	add(3, "")
	add(4, `{"organizationId":"org-demo","ownerId":"owner","tokenSha256":"`+strings.Repeat("ab", 33)+`"}`)
	add(4, `{"organizationId":"org-demo","ownerId":"owner","tokenSha256":"`+strings.Repeat("zz", 32)+`"}`)
	add(4, `{"organizationId":"","ownerId":"owner","tokenSha256":"`+strings.Repeat("ab", 32)+`"}`)
	add(4, `{}`)
	add(4, `null`)
	add(4, `[]`)
	add(2, string(rsa1024PEM))
	return out
}

// checkStateFile is the property of one state file given data, the others
// as a first start left them: the loaders never panic; each loader that
// reads the file either accepts it or refuses naming it, and the loaders
// that do not read it accept; accepted signing keys publish both active
// keys, and a start that accepted them accepts them again, unchanged.
func checkStateFile(t *testing.T, which uint8, data []byte) {
	t.Helper()
	tpl := template(t)
	name := stateFiles[int(which)%len(stateFiles)]
	dir := t.TempDir()
	for n, b := range tpl {
		if n == name {
			b = data
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	check := func(step string, reads bool, err error) bool {
		t.Helper()
		switch {
		case err == nil:
			return true
		case !reads:
			t.Fatalf("%s refused a state whose %s it does not read: %v", step, name, err)
		case !strings.Contains(err.Error(), path):
			t.Fatalf("%s: refusal %q does not name %s", step, err, path)
		}
		return false
	}
	m := stateMain(dir)
	_, err := m.loadPepper()
	check("loadPepper", name == "pepper", err)

	cfg, _, err := m.demoConfig()
	if check("demoConfig", name == "demo.json", err) {
		if _, err := cfg.compile(); err != nil {
			t.Fatalf("demoConfig accepted %s, but its configuration is refused: %v", name, err)
		}
	}

	signs := name != "pepper" && name != "demo.json"
	pub, err := m.signingKeys(false)
	if !check("signingKeys (public-keys command)", signs, err) {
		return
	}
	if k := kids(pub); k["EdDSA"] == "" || k["RS256"] == "" {
		t.Fatalf("accepted keys publish %v", k)
	}
	first, err := m.signingKeys(true)
	if !check("signingKeys (start)", signs, err) {
		return
	}
	again, err := m.signingKeys(true)
	if err != nil {
		t.Fatalf("a start accepted the state, the next one refuses it: %v", err)
	}
	if !bytes.Equal(first.JWKS(), again.JWKS()) {
		t.Fatalf("the published keys changed between two starts:\n%s\n%s", first.JWKS(), again.JWKS())
	}
}

// FuzzStateFiles feeds arbitrary contents to one file of the state
// directory (signing-keys.json, a signing key, pepper, demo.json): see
// checkStateFile for the property.
func FuzzStateFiles(f *testing.F) {
	for _, s := range stateSeeds(f) {
		f.Add(s.which, s.data)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		checkStateFile(t, which, data)
	})
}

// TestStateFilesHardCases runs the seeds as table cases and checks which
// are refused, so that a plain go test covers them.
func TestStateFilesHardCases(t *testing.T) {
	seeds := stateSeeds(t)
	refused := map[int]bool{} // by seed index: the server's own files (0-4) and a live or ended retired key are taken
	for _, i := range []int{
		7, 8, 9, 10, // a retired RSA-1024 or P-256 key, not PEM, a private key
		13, 15, 16, 17, // another kid, two EdDSA keys, not an object, empty
		18, 19, 20, 21, // the keys swapped, a private key as PUBLIC KEY, a bad RSA key
		22, 24, 25, // pepper too short, not hex, empty
		26, 27, 28, 29, 30, 31, // demo.json: digest too long, not hex, no organization, empty, null, array
		32, // an RSA-1024 signing key
	} {
		refused[i] = true
	}
	is := is.New(t)
	is.Equal(len(seeds), 33) // the list above follows stateSeeds
	for i, s := range seeds {
		t.Run(fmt.Sprintf("%d/%s", i, stateFiles[s.which]), func(t *testing.T) {
			is := is.New(t)
			checkStateFile(t, s.which, s.data)
			dir := t.TempDir()
			for n, b := range template(t) {
				if n == stateFiles[s.which] {
					b = s.data
				}
				is.NoErr(os.WriteFile(filepath.Join(dir, n), b, 0o600))
			}
			m := stateMain(dir)
			_, err1 := m.loadPepper()
			_, _, err2 := m.demoConfig()
			_, err3 := m.signingKeys(true)
			is.Equal(err1 != nil || err2 != nil || err3 != nil, refused[i]) // refused as expected
		})
	}
}
