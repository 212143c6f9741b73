// Package harness builds, starts and stops the reference server (or the
// PostgreSQL one, or testdata/embedder) as a separate process on loopback,
// for the tests of internal/server, apitest, pgstore, browsertest and the
// root package, and for the load tools (internal/cmd/loadgen,
// internal/cmd/listmem).
//
// Build compiles a command once per process; Start runs it, collects its
// stderr in a locked Buffer and waits for the line that says where it
// listens; Process.Stop sends SIGTERM and kills it if it does not exit in
// time. StartTB and BuildTB are the same for tests: they fail the test and
// stop the server when it ends. The package does not import testing, so a
// load tool that uses it links no test code.
package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
)

// The commands Build knows by name: directories relative to the
// repository's root.
const (
	ServerCmd         = "cmd/licensing-server"            // the reference server
	PostgresServerCmd = "pgstore/cmd/licensing-server-pg" // the reference server with the PostgreSQL store
	// EmbedderCmd is an application outside the repository's modules that
	// embeds the library through a replace directive in its own go.mod
	// (the root package's embedding_test.go); it builds without go.work
	// and without the network, as a user's program built from a clone.
	EmbedderCmd = "testdata/embedder"
)

// rootModule is the module path of the repository's root module.
const rootModule = "github.com/licensekit/licensing"

// Root returns the repository's root: the nearest directory, at or above
// the working directory, whose go.mod declares the module
// github.com/licensekit/licensing. Tests run in their package's directory
// and the load tools from the root, so both find it.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("harness: working directory: %w", err)
	}
	for dir := wd; ; {
		if isRoot(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("harness: no go.mod of module %s at or above %s: run from inside the repository", rootModule, wd)
		}
		dir = parent
	}
}

// isRoot reports whether the go.mod file at path declares rootModule.
func isRoot(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := bytes.Fields(sc.Bytes()); len(f) == 2 && string(f[0]) == "module" && string(f[1]) == rootModule {
			return true
		}
	}
	return false
}

// build is one target's build, done once.
type build struct {
	once sync.Once
	bin  string
	err  error
}

var (
	buildsMu sync.Mutex
	builds   = map[string]*build{} // by target
	buildDir string                // holds every binary; "" until the first build
)

// Build builds the command in target, a directory relative to the
// repository's root (ServerCmd, PostgresServerCmd), and returns the
// binary's path. A target is built once per process, however many
// goroutines ask; a failed build is not retried. The binaries live in a
// temporary directory that RemoveBuilds deletes.
func Build(target string) (string, error) {
	buildsMu.Lock()
	b := builds[target]
	if b == nil {
		b = &build{}
		builds[target] = b
	}
	buildsMu.Unlock()
	b.once.Do(func() { b.bin, b.err = goBuild(target) })
	return b.bin, b.err
}

// goBuild runs go build in target's directory, so that the command builds
// with its own module (the PostgreSQL server's is pgstore).
func goBuild(target string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	dir, err := workDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, path.Base(target))
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(root, filepath.FromSlash(target))
	if target == EmbedderCmd {
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOSUMDB=off")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("harness: go build in %s: %v\n%s", cmd.Dir, err, out)
	}
	return bin, nil
}

// workDir returns the temporary directory of the builds, made on first use.
func workDir() (string, error) {
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "licensing-harness-")
		if err != nil {
			return "", fmt.Errorf("harness: a directory for the binaries: %w", err)
		}
		buildDir = dir
	}
	return buildDir, nil
}

// RemoveBuilds deletes the binaries Build made; a later Build builds
// again. Call it once no process runs them: from TestMain after m.Run, or
// deferred in a load tool's main.
func RemoveBuilds() error {
	buildsMu.Lock()
	defer buildsMu.Unlock()
	dir := buildDir
	buildDir, builds = "", map[string]*build{}
	if dir == "" {
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return errors.New("harness: remove the built binaries: " + err.Error())
	}
	return nil
}
