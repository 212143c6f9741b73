package server_test

import (
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

// TestScanCommand runs `licensing-server scan` as a CI job would and checks
// its output and exit status.
func TestScanCommand(t *testing.T) {
	k1, _ := wire.GenerateKey(nil)
	k2, _ := wire.GenerateKey(nil)
	dir := t.TempDir()
	clean := filepath.Join(dir, "clean")
	leaky := filepath.Join(dir, "leaky")
	for name, content := range map[string]string{
		"clean/README.md":  "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
		"leaky/a/.env":     "X=1\nLICENSE_KEY=" + k1 + "\n",
		"leaky/b.json":     `{"key": "` + strings.ToUpper(k2) + `"}`,
		"leaky/.git/index": k1,
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m1, m2 := wire.MaskKey(k1), wire.MaskKey(k2)
	allowFile, badAllow := filepath.Join(dir, "allow"), filepath.Join(dir, "bad-allow")
	if err := os.WriteFile(allowFile, []byte("# examples\n\n"+strings.ToUpper(m1)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badAllow, []byte(k1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string
		stderr string // a substring
	}{
		{"clean tree", []string{clean}, "", 0, "", ""},
		{"leaky tree", []string{leaky}, "", 1,
			filepath.Join(leaky, "a", ".env") + ":2: " + m1 + "\n" + filepath.Join(leaky, "b.json") + ":1: " + m2 + "\n",
			"2 license key(s) found"},
		{"both", []string{clean, filepath.Join(leaky, "b.json")}, "", 1, filepath.Join(leaky, "b.json") + ":1: " + m2 + "\n", ""},
		{"missing path, the rest still scanned", []string{filepath.Join(dir, "nope"), filepath.Join(leaky, "b.json")}, "", 2,
			filepath.Join(leaky, "b.json") + ":1: " + m2 + "\n", "nope: no such file or directory"},
		{"missing path alone", []string{filepath.Join(dir, "nope")}, "", 2, "", "nope"},
		{"stdin", nil, "hello\r\nkey " + k1 + "\r\n", 1, "<stdin>:2: " + m1 + "\n", ""},
		{"stdin clean", nil, "nothing here\n", 0, "", ""},
		{"stdin empty", nil, "", 0, "", ""},
		{"dash is stdin", []string{clean, "-"}, k2, 1, "<stdin>:1: " + m2 + "\n", ""},
		{"unknown flag", []string{"-x", clean}, "", 2, "", "usage: licensing-server scan"},
		{"allow list: the documented example is not a leak", []string{"-allow", allowFile, leaky}, "", 1,
			filepath.Join(leaky, "b.json") + ":1: " + m2 + "\n", "1 license key(s) found"},
		{"allow list holding a full key is refused", []string{"-allow", badAllow, leaky}, "", 2, "", "want a masked key"},
		{"allow list missing", []string{"-allow", filepath.Join(dir, "nope"), leaky}, "", 2, "", "-allow"},
		{"help", []string{"-h"}, "", 0, "", "usage: licensing-server scan"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			cmd := exec.Command(serverBin, append([]string{"scan"}, tc.args...)...)
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else {
				is.NoErr(err)
			}
			is.Equal(code, tc.code)                               // exit status
			is.Equal(stdout.String(), tc.stdout)                  // findings
			is.True(strings.Contains(stderr.String(), tc.stderr)) // message
			for _, k := range []string{k1, k2} {
				is.True(!strings.Contains(strings.ToLower(stdout.String()+stderr.String()), k[8:56])) // never the full key
			}
		})
	}
}

// TestScanKeyInPath: a file or directory named after a key (a per-key cache
// or export file) is a leak, and the key is printed masked wherever a path
// or an argument is printed, in findings and in messages, so the output can
// go into a CI log.
func TestScanKeyInPath(t *testing.T) {
	named, _ := wire.GenerateKey(nil)
	inside, _ := wire.GenerateKey(nil)
	other, _ := wire.GenerateKey(nil)
	dir := t.TempDir()
	sub := filepath.Join(dir, "licenses", named)
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "license.env"), []byte("KEY="+inside+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mSub := filepath.Join(dir, "licenses", wire.MaskKey(named))
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // a substring
	}{
		{"key-named directory", []string{dir}, 1,
			mSub + ": " + wire.MaskKey(named) + " (in the path)\n" +
				filepath.Join(mSub, "license.env") + ":1: " + wire.MaskKey(inside) + "\n",
			"2 license key(s) found"},
		{"file in it, named on the command line", []string{filepath.Join(sub, "license.env")}, 1,
			filepath.Join(mSub, "license.env") + ": " + wire.MaskKey(named) + " (in the path)\n" +
				filepath.Join(mSub, "license.env") + ":1: " + wire.MaskKey(inside) + "\n",
			""},
		{"missing key-named path", []string{filepath.Join(dir, other)}, 2,
			filepath.Join(dir, wire.MaskKey(other)) + ": " + wire.MaskKey(other) + " (in the path)\n",
			wire.MaskKey(other) + ": no such file or directory"},
		{"key as a flag", []string{"-" + other}, 2, "", "-" + wire.MaskKey(other)},
		{"key-named allow file", []string{"-allow", filepath.Join(dir, other), dir}, 2, "", wire.MaskKey(other)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			cmd := exec.Command(serverBin, append([]string{"scan"}, tc.args...)...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else {
				is.NoErr(err)
			}
			is.Equal(code, tc.code)                               // exit status
			is.Equal(stdout.String(), tc.stdout)                  // findings
			is.True(strings.Contains(stderr.String(), tc.stderr)) // message
			for _, k := range []string{named, inside, other} {
				is.True(!strings.Contains(strings.ToLower(stdout.String()+stderr.String()), k[8:56])) // never a key's middle
			}
		})
	}
}

// TestScanOddNames: file names holding a newline, a carriage return, an
// escape sequence or invalid UTF-8 cannot forge findings or reach the
// terminal: each finding is one line, quoted, and messages escape them too.
func TestScanOddNames(t *testing.T) {
	is := is.New(t)
	key, _ := wire.GenerateKey(nil)
	m := wire.MaskKey(key)
	dir := t.TempDir()
	names := []string{"a\nforged.go:9: 00000000...00000000\n", "\x1b[31mred\x1b[0m", "c\rd.txt", "\xff\xfe.txt", "\x1b]0;title\x07"}
	for _, name := range names {
		is.NoErr(os.WriteFile(filepath.Join(dir, name), []byte(key), 0o644))
	}
	run := func(args ...string) (string, string) {
		cmd := exec.Command(serverBin, append([]string{"scan"}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		return stdout.String(), stderr.String()
	}
	stdout, stderr := run(dir, filepath.Join(dir, "gone\r\x1b[2K"), "-")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	is.Equal(len(lines), len(names)) // one line a finding: none forged
	for _, l := range lines {
		is.True(strings.HasPrefix(l, `"`+dir+"/")) // quoted
		is.True(strings.HasSuffix(l, `":1: `+m))
	}
	is.True(strings.Contains(stdout, `"`+dir+`/a\nforged.go:9: 00000000...00000000\n":1: `+m))
	is.True(strings.Contains(stderr, `"`+dir+`/gone\r\x1b[2K": no such file or directory`)) // the error's path too
	for _, out := range []string{stdout, stderr} {
		is.True(!strings.ContainsAny(out, "\r\x1b\x07")) // nothing for the terminal
		is.True(utf8.ValidString(out))
	}

	_, stderr = run("-\x1b[31mx\n")
	is.True(strings.Contains(stderr, `flag provided but not defined: -\x1b[31mx\n`)) // an argument in a message is escaped
	is.True(!strings.Contains(stderr, "\x1b"))

	// a byte escaped as \xNN before the rest of a key whose first two
	// characters are NN: the escape completes the key, which is masked
	for key[0] < '8' {
		key, _ = wire.GenerateKey(nil)
	}
	first, err := hex.DecodeString(key[:2])
	is.NoErr(err)
	_, stderr = run("-" + string(first) + key[2:])
	is.True(strings.Contains(stderr, `flag provided but not defined: -\x`+key[:8]+"..."+key[56:])) // escaped, then masked
	is.True(!strings.Contains(stderr, key))
}
