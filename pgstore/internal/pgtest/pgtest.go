// Package pgtest starts a throwaway PostgreSQL for tests: a temporary data
// directory, a Unix socket in a temporary directory, no TCP port, stopped
// and removed at the end.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Server is a running throwaway PostgreSQL.
type Server struct {
	dir, socket string
	bin         string
	runAs       string
	schemas     atomic.Int64
}

func binDir() string {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p)
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1])
	}
	return ""
}

// Start starts a server, or skips the calling test when the binaries are
// missing (fails instead when CI is set). Call Stop when done.
func Start(tb testing.TB) *Server {
	bin := binDir()
	if bin == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("pgtest: initdb and pg_ctl not found; .ci/run must install Debian's postgresql")
		}
		tb.Skip("pgtest: initdb and pg_ctl not found; install PostgreSQL to run these tests")
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{dir: dir, socket: filepath.Join(dir, "sock"), bin: bin}
	if err := os.Mkdir(s.socket, 0o700); err != nil {
		tb.Fatal(err)
	}
	if os.Geteuid() == 0 { // initdb refuses to run as root
		s.runAs = "postgres"
		u, err := user.Lookup(s.runAs)
		if err != nil {
			s.runAs = "nobody"
			u, err = user.Lookup(s.runAs)
			if err != nil {
				tb.Fatal("pgtest: running as root and neither postgres nor nobody exists")
			}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{dir, s.socket} {
			if err := os.Chown(p, uid, gid); err != nil {
				tb.Fatal(err)
			}
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		s.remove()
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	if err := s.start(); err != nil {
		s.remove()
		tb.Fatal(err)
	}
	return s
}

// start runs pg_ctl start on the data directory.
func (s *Server) start() error {
	opts := fmt.Sprintf("-k %s -c listen_addresses='' -c fsync=off -c max_connections=200", s.socket)
	if out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-o", opts, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		return fmt.Errorf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Halt stops the server as an operator would (pg_ctl stop, fast mode:
// sessions are ended, committed data kept), leaving its files for Resume.
func (s *Server) Halt(tb testing.TB) {
	if out, err := s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		tb.Fatalf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
}

// Freeze stops every process of the server (SIGSTOP: the postmaster and
// its children, by their ids) without closing a connection, as a
// PostgreSQL that hangs or is cut off by the network looks to its
// clients, and returns the function that lets them run again (SIGCONT).
func (s *Server) Freeze(tb testing.TB) (thaw func()) {
	b, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		tb.Fatalf("pgtest: postmaster.pid: %v", err)
	}
	pids := []int{pid}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, ppid follows the last ')'
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			pids = append(pids, n)
		}
	}
	for _, p := range pids {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			tb.Fatalf("pgtest: SIGSTOP %d: %v", p, err)
		}
	}
	return func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGCONT)
		}
	}
}

// Resume starts a server stopped by Halt again, on the same socket.
func (s *Server) Resume(tb testing.TB) {
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}

func (s *Server) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *Server) remove() { os.RemoveAll(s.dir) }

// Stop stops the server and removes its files.
func (s *Server) Stop() {
	s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	s.remove()
}

// DSN returns a connection string for the server's postgres database.
func (s *Server) DSN() string {
	return fmt.Sprintf("host=%s user=postgres dbname=postgres sslmode=disable", s.socket)
}

// NewSchema creates an empty schema and returns a DSN whose search_path is
// it, so each test gets fresh tables.
func (s *Server) NewSchema(tb testing.TB) string {
	name := fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1e6, s.schemas.Add(1))
	ctx := context.Background()
	pool, err := pxNew(ctx, s.DSN())
	if err != nil {
		tb.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatal(err)
	}
	return s.DSN() + " search_path=" + name
}

func pxNew(ctx context.Context, dsn string) (*pgxpool.Pool, error) { return pgxpool.New(ctx, dsn) }
