package harness

import "os/exec"

// TB is the part of testing.TB the harness uses; *testing.T and
// *testing.B satisfy it. The harness names its own interface so that it
// does not import testing, which the load tools would then link.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
}

// BuildTB is Build for a test: a failed build fails it.
func BuildTB(t TB, target string) string {
	t.Helper()
	bin, err := Build(target)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return bin
}

// StartTB is Start for a test: a server that does not listen fails it, and
// the server is stopped when the test ends (see StopTB). A failed test's
// output ends with the server's log.
func StartTB(t TB, cmd *exec.Cmd, cfg Config) *Process {
	t.Helper()
	p, err := Start(cmd, cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		StopTB(t, p)
		if t.Failed() {
			t.Logf("server log (%s):\n%s", p.Cmd.Path, p.Log.String())
		}
	})
	return p
}

// StopTB stops p (see Process.Stop) and fails the test when p had to be
// killed.
func StopTB(t TB, p *Process) {
	t.Helper()
	if err := p.Stop(); err != nil {
		t.Errorf("%v", err)
	}
}
