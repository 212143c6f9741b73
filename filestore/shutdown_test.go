package filestore

import (
	"bufio"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// crashed removes what a clean Close leaves, so that the directory is as a
// crash (kill -9, power loss) leaves it.
func crashed(t *testing.T, dir string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, cleanName)); err != nil {
		t.Fatal(err)
	}
}

// killMidway runs test (this binary's test of that name) again as a child
// process with env set to dir, hands line each line of three fields the
// child prints, and kills the child with SIGKILL soon after line has
// reported killAfter acknowledged writes: at once, or up to 0.6 ms later,
// so that the kill lands inside the next write or between two. It returns
// the acknowledged writes the child printed.
func killMidway(t *testing.T, test, env, dir string, killAfter int, line func(f []string) (acked bool)) int {
	t.Helper()
	is := is.New(t)
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	is.NoErr(err)
	is.NoErr(cmd.Start())
	lines := bufio.NewScanner(out)
	oks, killed := 0, false
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) != 3 || !line(f) {
			continue
		}
		oks++
		if !killed && oks >= killAfter {
			if n := rand.IntN(3); n > 0 {
				time.Sleep(time.Duration(rand.IntN(n*300)) * time.Microsecond)
			}
			is.NoErr(cmd.Process.Kill()) // SIGKILL
			killed = true
		}
	}
	err = cmd.Wait()
	is.True(killed) // the child was killed, it did not stop by itself
	is.True(err != nil)
	return oks
}

// reopenAfterKill opens the store in dir after killMidway and reports
// whether opening it cut off a torn record.
func reopenAfterKill(t *testing.T, dir string, round int) (*Store, bool) {
	t.Helper()
	var logged strings.Builder
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatalf("round %d: open after SIGKILL: %v", round, err)
	}
	return s, strings.Contains(logged.String(), "cut off an incomplete record")
}

// checkCutsOfLastWrite closes s as a crash would leave it, then cuts its
// log at every offset from start (where the last write began) to the end,
// each cut as written and with the rest zero-filled (the file grew, the
// data never landed), and checks that the store reopens to before, or to
// after when nothing was cut. what names the last write in failures.
func checkCutsOfLastWrite(t *testing.T, s *Store, dir string, start int64, before, after, what string) {
	t.Helper()
	is := is.New(t)
	s.Close()
	crashed(t, dir)
	path := filepath.Join(dir, logName(0))
	orig, err := os.ReadFile(path)
	is.NoErr(err)
	for cut := start; cut <= int64(len(orig)); cut++ {
		for _, zeros := range []bool{false, true} {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			is.NoErr(err)
			_, err = f.WriteAt(orig, 0)
			is.NoErr(err)
			is.NoErr(f.Truncate(cut))
			if zeros {
				is.NoErr(f.Truncate(int64(len(orig))))
			}
			f.Close()
			s, err := Open(dir, Options{Logger: quiet()})
			if err != nil {
				t.Fatalf("cut at %d (zero-filled %v): %v", cut, zeros, err)
			}
			got := dump(s)
			s.Close()
			want, which := before, "no "+what
			if cut == int64(len(orig)) {
				want, which = after, "the whole "+what
			}
			if got != want {
				t.Fatalf("cut at %d of %d (zero-filled %v): want %s, got\n%s\nwant\n%s", cut, len(orig), zeros, which, got, want)
			}
		}
	}
}

// TestDamageAfterACleanShutdownIsRefused: after a clean Close every byte
// of the log was acknowledged, so damage that would pass for a torn tail
// after a crash (the last bytes zeroed: a lost or zeroed sector; the file
// cut short) refuses to open with a CorruptError instead of cutting
// acknowledged records. After a crash the same zeros are an interrupted
// append and are cut (TestZeroFilledTailIsTorn, TestTornTailAtEveryOffset).
func TestDamageAfterACleanShutdownIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		damage func(f *os.File, size int64) error
		why    string
	}{
		{"last byte zeroed", func(f *os.File, size int64) error { _, err := f.WriteAt([]byte{0}, size-1); return err }, "checksum"},
		{"last 496 bytes zeroed", func(f *os.File, size int64) error { _, err := f.WriteAt(make([]byte, 496), size-496); return err }, "checksum"},
		{"last 600 bytes zeroed", func(f *os.File, size int64) error { _, err := f.WriteAt(make([]byte, 600), size-600); return err }, "checksum"},
		{"cut by one byte", func(f *os.File, size int64) error { return f.Truncate(size - 1) }, "shorter"},
		{"cut to the header", func(f *os.File, size int64) error { return f.Truncate(headerSize) }, "shorter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			s := open(t, dir, Options{})
			fill(t, s, 12)
			is.NoErr(s.Close())
			path := filepath.Join(dir, logName(0))
			fi, err := os.Stat(path)
			is.NoErr(err)
			f, err := os.OpenFile(path, os.O_WRONLY, 0o600)
			is.NoErr(err)
			is.NoErr(tc.damage(f, fi.Size()))
			f.Close()
			_, err = Open(dir, Options{Logger: quiet()})
			var ce *CorruptError
			is.True(errors.As(err, &ce)) // refused, never cut
			is.Equal(ce.File, path)
			is.True(strings.Contains(ce.Reason, tc.why))
		})
	}
}

// TestCleanShutdownMarker: the marker only ever makes Open stricter. A log
// that grew after it (a crash after the next open's writes), a marker that
// does not parse, and a marker for an older generation are ignored; a torn
// tail after such a crash is still cut; the marker is gone once the store
// is open and back after the next Close.
func TestCleanShutdownMarker(t *testing.T) {
	tests := []struct {
		name    string
		compact bool                                // the second session compacts: log-1
		marker  func(dir string, size int64) string // the marker's content; "" keeps Close's
	}{
		{"stale: the log grew after it", false, func(string, int64) string { return "" }},
		{"garbage", false, func(string, int64) string { return "not a marker" }},
		{"an older generation, compacted away", true, func(_ string, size int64) string { return logName(0) + " " + strconv.FormatInt(size, 10) + "\n" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			s := open(t, dir, Options{})
			fill(t, s, 5)
			is.NoErr(s.Close())
			marker := filepath.Join(dir, cleanName)
			old, err := os.ReadFile(marker)
			is.NoErr(err)
			s = open(t, dir, Options{})
			_, err = os.Stat(marker)
			is.True(os.IsNotExist(err)) // gone while the store is open
			if tc.compact {
				is.NoErr(s.Compact())
			}
			want := dump(s)
			path := filepath.Join(dir, logName(s.gen))
			fi, _ := os.Stat(path)
			s.Close()
			content := string(old) // a crash after writes: the old marker is back
			if c := tc.marker(dir, fi.Size()); c != "" {
				content = c
			}
			is.NoErr(os.WriteFile(marker, []byte(content), 0o600))
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
			is.NoErr(err)
			f.Write(make([]byte, 300)) // and an interrupted append
			f.Close()
			s2 := open(t, dir, Options{})
			is.Equal(dump(s2), want) // the torn tail is cut
			s2.Close()
			_, err = os.Stat(marker)
			is.NoErr(err) // a clean Close writes it again
		})
	}
}

// TestNewestLogLostAfterCleanShutdown: the clean-shutdown marker names the
// newest log; if that log is gone (a copy or restore that skipped it, an
// rm), Open refuses rather than start over from the snapshot without the
// records acknowledged after it.
func TestNewestLogLostAfterCleanShutdown(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quiet()})
	is.NoErr(err)
	fill(t, s, 6)
	is.NoErr(s.Compact())
	fill(t, s, 6)
	is.NoErr(s.Close())
	b, err := os.ReadFile(filepath.Join(dir, cleanName))
	is.NoErr(err)
	t.Logf("clean-shutdown: %q", b)
	is.NoErr(os.Remove(filepath.Join(dir, logName(1)))) // the newest log is lost
	s2, err := Open(dir, Options{Logger: quiet()})
	if err == nil {
		t.Logf("opened with %d keys of 12", s2.bulk.Len())
		s2.Close()
	}
	is.True(err != nil) // the marker says log-1 held acknowledged records
}

// TestSnapshotLostRefuses: compaction makes snapshot N durable before log
// N, so a log with no snapshot of its generation means the snapshot was
// lost; Open refuses (with or without a clean shutdown before), and never
// records another pepper fingerprint over what is left.
func TestSnapshotLostRefuses(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "after a clean shutdown", true: "after a crash"}[crash], func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			s, err := Open(dir, Options{Logger: quiet(), PepperFingerprint: "fp-one"})
			is.NoErr(err)
			fill(t, s, 6)
			is.NoErr(s.Compact())
			fill(t, s, 6)
			is.NoErr(s.Close())
			if crash {
				crashed(t, dir)
			}
			is.NoErr(os.Remove(filepath.Join(dir, snapshotName(1))))
			_, err = Open(dir, Options{Logger: quiet(), PepperFingerprint: "fp-two"}) // another pepper, even
			var ce *CorruptError
			is.True(errors.As(err, &ce)) // snapshot-1 held 6 acknowledged keys
			is.True(strings.Contains(ce.Reason, snapshotName(1)))
		})
	}
	t.Run("a snapshot without any log", func(t *testing.T) {
		is := is.New(t)
		dir := t.TempDir()
		s := open(t, dir, Options{})
		fill(t, s, 3)
		is.NoErr(s.Compact())
		fill(t, s, 3)
		is.NoErr(s.Close())
		crashed(t, dir)
		is.NoErr(os.Remove(filepath.Join(dir, logName(1))))
		_, err := Open(dir, Options{Logger: quiet()})
		var ce *CorruptError
		is.True(errors.As(err, &ce)) // the 3 keys after the snapshot are lost: refused
	})
}
