package harness_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/harness"
	"github.com/matryer/is"
)

// TestMain doubles as a fake server: with HARNESS_FAKE set, the test
// binary plays the part it names instead of running the tests.
func TestMain(m *testing.M) {
	if part := os.Getenv("HARNESS_FAKE"); part != "" {
		fakeServer(part)
		return
	}
	code := m.Run()
	harness.RemoveBuilds()
	os.Exit(code)
}

// fakeServer writes to stderr what a server would, in the way part says.
func fakeServer(part string) {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	switch part {
	case "text", "json":
		fmt.Fprintln(os.Stderr, "owner token: lk_secret")
		if part == "json" {
			fmt.Fprintln(os.Stderr, `{"time":"2026-12-06T19:00:00Z","level":"INFO","msg":"listening","addr":"127.0.0.1:4321","store":"memory"}`)
		} else {
			fmt.Fprintln(os.Stderr, "time=2026-12-06T19:00:00Z level=INFO msg=listening addr=127.0.0.1:4321 store=memory")
		}
		fmt.Fprintln(os.Stderr, "a request")
		<-term
		fmt.Fprint(os.Stderr, "stopped") // no newline: the last line still counts
		os.Exit(0)
	case "refuse":
		fmt.Fprintln(os.Stderr, "licensing-server: refusing to start: the data directory is not writable")
		os.Exit(3)
	case "silent":
		<-term
		os.Exit(0)
	case "stubborn": // listens, then ignores SIGTERM
		fmt.Fprintln(os.Stderr, "floor listening on 127.0.0.1:4321")
		time.Sleep(time.Hour)
	}
	os.Exit(2)
}

// fake is a command that runs the test binary as a fake server.
func fake(part string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HARNESS_FAKE="+part)
	return cmd
}

func TestListenAddr(t *testing.T) {
	tests := []struct {
		name, log, want string
		ok              bool
	}{
		{"text log", "level=INFO msg=starting\ntime=x level=INFO msg=listening addr=127.0.0.1:8080 store=file\n", "127.0.0.1:8080", true},
		{"JSON log", `{"level":"INFO","msg":"listening","addr":"[::1]:9"}`, "[::1]:9", true},
		{"floor server", "floor listening on 127.0.0.1:7\n", "127.0.0.1:7", true},
		{"the first of two", "msg=listening addr=a:1\nmsg=listening addr=b:2\n", "a:1", true},
		{"no listen line", "msg=listening-soon\nlevel=ERROR msg=refused\n", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			addr, ok := harness.ListenAddr(tc.log)
			is.Equal(ok, tc.ok)
			is.Equal(addr, tc.want)
		})
	}
}

func TestStartStop(t *testing.T) {
	for _, part := range []string{"text", "json"} {
		t.Run(part, func(t *testing.T) {
			is := is.New(t)
			p, err := harness.Start(fake(part), harness.Config{})
			is.NoErr(err)
			is.Equal(p.Addr, "127.0.0.1:4321")
			is.Equal(p.URL, "http://127.0.0.1:4321")
			is.True(strings.Contains(p.Log.String(), "owner token: lk_secret")) // the lines before the listen line are in the log
			is.NoErr(p.Stop())                                                  // stopped by SIGTERM
			is.NoErr(p.Wait())                                                  // exit status 0
			is.True(strings.HasSuffix(p.Log.String(), "a request\nstopped\n"))  // the whole log, a last line without newline too
			is.NoErr(p.Stop())                                                  // stopping again does nothing
		})
	}
}

func TestStartLine(t *testing.T) {
	is := is.New(t)
	var token string
	p, err := harness.Start(fake("text"), harness.Config{Line: func(line string) string {
		if rest, ok := strings.CutPrefix(line, "owner token: "); ok {
			token = rest
			return "owner token: <redacted>"
		}
		return line
	}})
	is.NoErr(err)
	defer p.Stop()
	is.Equal(token, "lk_secret")                                         // seen before Start returned
	is.True(!strings.Contains(p.Log.String(), "lk_secret"))              // and not kept
	is.True(strings.Contains(p.Log.String(), "owner token: <redacted>")) // what Line returned is
}

func TestStartDropLogAfterListen(t *testing.T) {
	is := is.New(t)
	p, err := harness.Start(fake("text"), harness.Config{DropLogAfterListen: true})
	is.NoErr(err)
	is.NoErr(p.Stop())
	log := p.Log.String()
	is.True(strings.Contains(log, "msg=listening")) // kept up to the listen line
	is.True(!strings.Contains(log, "a request"))    // nothing after it
	is.True(!strings.Contains(log, "stopped"))
}

func TestStartExited(t *testing.T) {
	is := is.New(t)
	p, err := harness.Start(fake("refuse"), harness.Config{})
	is.True(errors.Is(err, harness.ErrExited))                                   // exited before it listened
	is.True(strings.Contains(err.Error(), "the data directory is not writable")) // the error carries the log
	var exit *exec.ExitError
	is.True(errors.As(p.Wait(), &exit))
	is.Equal(exit.ExitCode(), 3)
	is.NoErr(p.Stop()) // nothing to stop
}

func TestStartSilent(t *testing.T) {
	is := is.New(t)
	p, err := harness.Start(fake("silent"), harness.Config{ListenTimeout: 200 * time.Millisecond})
	is.True(err != nil)
	is.True(!errors.Is(err, harness.ErrExited))
	is.True(strings.Contains(err.Error(), "did not say it listens"))
	select {
	case <-p.Exited(): // stopped
	default:
		t.Fatal("a server that never listened still runs")
	}
}

func TestStopKills(t *testing.T) {
	is := is.New(t)
	p, err := harness.Start(fake("stubborn"), harness.Config{StopTimeout: 200 * time.Millisecond})
	is.NoErr(err)
	is.Equal(p.Addr, "127.0.0.1:4321") // the floor server's line
	err = p.Stop()
	is.True(err != nil && strings.Contains(err.Error(), "killed")) // it says the server had to be killed
	is.NoErr(p.Stop())                                             // once
	is.True(p.Wait() != nil)                                       // killed by a signal
}

// recorder is a harness.TB that records what the harness reports.
type recorder struct {
	*testing.T
	errors, logs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recorder) Failed() bool { return len(r.errors) > 0 }

func TestStartTB(t *testing.T) {
	is := is.New(t)
	r := &recorder{T: t}
	var p *harness.Process
	t.Run("server", func(t *testing.T) {
		r.T = t
		p = harness.StartTB(r, fake("stubborn"), harness.Config{StopTimeout: 200 * time.Millisecond})
	})
	is.Equal(p.Addr, "127.0.0.1:4321")
	<-p.Exited()               // stopped when the (sub)test ended
	is.Equal(len(r.errors), 1) // a kill fails the test
	is.True(strings.Contains(r.errors[0], "killed"))
	is.Equal(len(r.logs), 1) // and the failed test shows the server's log
	is.True(strings.Contains(r.logs[0], "floor listening on"))
}

func TestStartRefusesStderr(t *testing.T) {
	is := is.New(t)
	cmd := fake("text")
	cmd.Stderr = os.Stderr
	_, err := harness.Start(cmd, harness.Config{})
	is.True(err != nil && strings.Contains(err.Error(), "leave cmd.Stderr nil")) // names the fix
	is.True(cmd.Process == nil)                                                  // not started
}

func TestRoot(t *testing.T) {
	is := is.New(t)
	root, err := harness.Root()
	is.NoErr(err)
	is.Equal(root, filepath.Dir(filepath.Dir(must(os.Getwd())))) // internal/harness is two levels down
}

func TestBuild(t *testing.T) {
	is := is.New(t)
	bin, err := harness.Build(harness.ServerCmd)
	is.NoErr(err)
	is.Equal(filepath.Base(bin), "licensing-server")
	again, err := harness.Build(harness.ServerCmd)
	is.NoErr(err)
	is.Equal(again, bin) // built once
	out, err := exec.Command(bin, "-h").CombinedOutput()
	is.True(strings.Contains(string(out), "-addr")) // the server, runnable

	_, err = harness.Build("cmd/no-such-command")
	is.True(err != nil && strings.Contains(err.Error(), filepath.FromSlash("cmd/no-such-command"))) // names the directory

	is.NoErr(harness.RemoveBuilds())
	_, err = os.Stat(bin)
	is.True(os.IsNotExist(err)) // removed
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
