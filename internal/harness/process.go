package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// listenLine matches the line a server prints once it listens: the
// reference server's, in the text or the JSON log format, and the load
// generator's floor server's.
var listenLine = regexp.MustCompile(`(?:msg=listening addr=|"msg":"listening","addr":"|floor listening on )([^\s"]+)`)

// ListenAddr returns the address in the first line of log that says the
// server listens, and whether there is one. It is for a server run in the
// test's own process (server.Main writing to a Buffer); Start finds the
// line itself.
func ListenAddr(log string) (addr string, ok bool) {
	m := listenLine.FindStringSubmatch(log)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// Default waits of Config.
const (
	DefaultListenTimeout = 60 * time.Second // a first start makes an RSA key, which is slow on a busy machine
	DefaultStopTimeout   = 20 * time.Second
)

// ErrExited is the error Start returns (wrapped with the exit status and
// the log) when the process exits before it listens.
var ErrExited = errors.New("harness: the server exited before it listened")

// Config is how Start runs a process. The zero value keeps the whole log
// and waits the default times.
type Config struct {
	// ListenTimeout is how long Start waits for the listen line before it
	// stops the process; 0 means DefaultListenTimeout.
	ListenTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before it kills the
	// process; 0 means DefaultStopTimeout.
	StopTimeout time.Duration
	// Line, when set, sees each line of stderr (without its newline), in
	// order, before the log keeps it, and returns what the log keeps
	// instead: a test reads a secret from its line and redacts it there.
	// It runs on the goroutine that copies stderr; the lines before the
	// listen line are all seen before Start returns.
	Line func(line string) string
	// DropLogAfterListen keeps nothing the process writes after its listen
	// line: a load tool's server logs every request, and the log would
	// grow for as long as it runs.
	DropLogAfterListen bool
}

// Process is one running server that Start started.
type Process struct {
	Cmd  *exec.Cmd
	Addr string  // host:port it listens on
	URL  string  // "http://" + Addr
	Log  *Buffer // its stderr, line by line (see Config.Line, Config.DropLogAfterListen)

	stopTimeout time.Duration
	listened    chan string   // receives Addr once
	exited      chan struct{} // closed once Wait returned and the log is complete
	waitErr     error         // cmd.Wait's; read after exited is closed
	stopMu      sync.Mutex
	stopped     bool
}

// Start starts cmd with its stderr collected in the Process's Log, and
// waits until the process prints where it listens. Its Stdout is left as
// the caller set it and cmd.Stderr must be nil. When the process exits
// first, Start returns it with an error wrapping ErrExited; when it is
// silent for cfg.ListenTimeout, Start stops it and returns an error. Each
// error carries the log. The caller stops a started process with Stop.
func Start(cmd *exec.Cmd, cfg Config) (*Process, error) {
	if cmd.Stderr != nil {
		return nil, errors.New("harness: Start reads the server's stderr itself: leave cmd.Stderr nil and read Process.Log")
	}
	p := &Process{
		Cmd:         cmd,
		Log:         &Buffer{},
		stopTimeout: cfg.StopTimeout,
		listened:    make(chan string, 1),
		exited:      make(chan struct{}),
	}
	if p.stopTimeout <= 0 {
		p.stopTimeout = DefaultStopTimeout
	}
	w := &lineWriter{p: p, line: cfg.Line, drop: cfg.DropLogAfterListen}
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("harness: start %s: %w", cmd.Path, err)
	}
	go func() {
		p.waitErr = cmd.Wait() // returns once the exec package copied all of stderr
		w.flush()
		close(p.exited)
	}()
	timeout := cfg.ListenTimeout
	if timeout <= 0 {
		timeout = DefaultListenTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case addr := <-p.listened:
		p.listen(addr)
		return p, nil
	case <-p.exited:
		select {
		case addr := <-p.listened: // it listened, then exited at once
			p.listen(addr)
			return p, nil
		default:
		}
		return p, fmt.Errorf("%w (%v); its log:\n%s", ErrExited, p.waitErr, p.Log.String())
	case <-timer.C:
		p.Stop()
		return p, fmt.Errorf("harness: the server did not say it listens within %v; its log:\n%s", timeout, p.Log.String())
	}
}

func (p *Process) listen(addr string) {
	p.Addr, p.URL = addr, "http://"+addr
}

// Exited is closed once the process has exited and its log is complete.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to exit and returns what exec.Cmd.Wait
// returned (nil for a zero exit status). It may be called any number of
// times, from any goroutine.
func (p *Process) Wait() error {
	<-p.exited
	return p.waitErr
}

// Stop asks the process to shut down with SIGTERM (so it drains, flushes
// its store and writes its profile) and waits for it to exit. A process
// still running after the stop timeout is killed, and Stop says so in its
// error. Stopping a process that already exited, or that another call
// stopped, does nothing and returns nil, so the kill is reported once.
func (p *Process) Stop() error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	select {
	case <-p.exited:
		return nil
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(p.stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return nil
	case <-timer.C:
		p.Cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("harness: the server did not stop within %v of SIGTERM and was killed", p.stopTimeout)
	}
}

// lineWriter is the process's stderr: it splits the output into lines,
// passes each through Config.Line, keeps it in the log and reports the
// first listen line.
type lineWriter struct {
	p        *Process
	line     func(string) string
	drop     bool
	partial  []byte // the start of a line not yet ended
	listened bool
}

// Write is called by the exec package's copying goroutine alone, and flush
// after it finished, so the fields need no lock.
func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if !(w.drop && w.listened) {
				w.partial = append(w.partial, b...)
			}
			break
		}
		w.partial = append(w.partial, b[:i]...)
		w.take(string(w.partial))
		w.partial, b = w.partial[:0], b[i+1:]
	}
	return n, nil
}

// flush takes a last line that had no newline.
func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.take(string(w.partial))
		w.partial = nil
	}
}

func (w *lineWriter) take(s string) {
	if w.drop && w.listened {
		return
	}
	if w.line != nil {
		s = w.line(s)
	}
	w.p.Log.Write([]byte(s + "\n"))
	if !w.listened {
		if addr, ok := ListenAddr(s); ok {
			w.listened = true
			w.p.listened <- addr
		}
	}
}
