package licensing_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/internal/harness"
)

// buildEmbedder builds testdata/embedder (harness.EmbedderCmd), an
// application outside this module that requires it through a replace
// directive in its own go.mod, and returns the binary's path.
func buildEmbedder(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds testdata/embedder with the go command; skipped with -short")
	}
	return harness.BuildTB(t, harness.EmbedderCmd)
}

// embedder is a running testdata/embedder.
type embedder struct{ *harness.Process }

// startEmbedder runs bin on dir until it listens; it is stopped when the
// test ends, or earlier with harness.StopTB.
func startEmbedder(t *testing.T, bin, dir string) embedder {
	t.Helper()
	return embedder{harness.StartTB(t, exec.Command(bin, dir), harness.Config{})}
}

func (e *embedder) post(t *testing.T, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("POST", e.URL+"/api/v1/licensing"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var answer map[string]any
	json.NewDecoder(res.Body).Decode(&answer)
	return res.StatusCode, answer
}

// TestEmbedderIsRateLimitedByDefault: a program outside the module that
// passes HandlerConfig{} gets the reference server's limits: 429 after the
// burst of validations, and after a burst of guessed owner tokens.
func TestEmbedderIsRateLimitedByDefault(t *testing.T) {
	is := is.New(t)
	e := startEmbedder(t, buildEmbedder(t), t.TempDir())
	status, created := e.post(t, "/keys", "owner-secret", "")
	is.Equal(status, 201)
	validate := `{"licenseKey":"` + created["licenseKey"].(string) + `"}`
	for range 30 {
		status, _ = e.post(t, "/validate", "", validate)
		is.Equal(status, 200) // the burst of 30
	}
	for i := 0; i < 100 && status == 200; i++ { // the bucket refills at 0.5 a second
		status, _ = e.post(t, "/validate", "", validate)
	}
	is.Equal(status, 429) // validation is limited without a word in HandlerConfig

	guesses := 0
	for ; guesses < 200; guesses++ {
		if status, _ = e.post(t, "/keys", "guess-"+strconv.Itoa(guesses), ""); status != 401 {
			break
		}
	}
	is.Equal(status, 429)  // guessed owner tokens are cut off
	is.True(guesses >= 30) // after the burst
	is.True(guesses < 200)
}

// TestEmbedderKeepsItsPepper: a program outside the module keeps its pepper
// with LoadOrCreatePepper, so its keys validate after a restart; with
// another pepper file, New refuses its file store (no option set) rather
// than answer every issued key 401.
func TestEmbedderKeepsItsPepper(t *testing.T) {
	is := is.New(t)
	bin, dir := buildEmbedder(t), t.TempDir()
	e := startEmbedder(t, bin, dir)
	status, created := e.post(t, "/keys", "owner-secret", "")
	is.Equal(status, 201)
	validate := `{"licenseKey":"` + created["licenseKey"].(string) + `"}`
	harness.StopTB(t, e.Process)
	fi, err := os.Stat(filepath.Join(dir, "pepper"))
	is.NoErr(err)
	is.Equal(fi.Mode().Perm(), os.FileMode(0o600)) // the pepper file is private

	e = startEmbedder(t, bin, dir) // the restart
	status, _ = e.post(t, "/validate", "", validate)
	is.Equal(status, 200) // the key issued before it still validates
	harness.StopTB(t, e.Process)

	original, err := os.ReadFile(filepath.Join(dir, "pepper"))
	is.NoErr(err)
	is.NoErr(os.WriteFile(filepath.Join(dir, "pepper"), []byte(strings.Repeat("b", 64)+"\n"), 0o600))
	p, err := harness.Start(exec.Command(bin, dir), harness.Config{})
	is.True(errors.Is(err, harness.ErrExited)) // it refuses to start
	is.Equal(p.Cmd.ProcessState.ExitCode(), 3) // errors.Is(err, licensing.ErrPepperMismatch) in the program
	log := p.Log.String()
	is.True(strings.Contains(log, "msg=\"pepper mismatch\""))   // from New, with no filestore option
	is.True(strings.Contains(log, "Config.Pepper"))             // naming the setting
	is.True(strings.Contains(log, filepath.Join(dir, "store"))) // and the store

	is.NoErr(os.WriteFile(filepath.Join(dir, "pepper"), original, 0o600))
	e = startEmbedder(t, bin, dir) // the original pepper restored
	status, _ = e.post(t, "/validate", "", validate)
	is.Equal(status, 200)
}
