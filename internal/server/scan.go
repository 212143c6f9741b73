package server

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/licensekit/licensing/internal/scan"
)

// stdinName names standard input in the scanner's findings.
const stdinName = "<stdin>"

// scanMain runs `licensing-server scan [PATH...]`: it prints each license key
// found in the paths (standard input when there are none; "-" names it too)
// as "file:line: masked key" (a key in a file's or directory's name as
// "path: masked key (in the path)"; every path printed has its keys masked),
// and returns 1 when it found any, 0 when none,
// and 2 when a path could not be read (after scanning the rest) or on misuse.
func (m *Main) scanMain(args []string) int {
	stderr := m.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	return runScan(args, os.Stdin, os.Stdout, stderr)
}

func runScan(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Whatever goes to standard error (a path in an error, an argument in
	// a usage message) has any key in it masked, and a message (not the
	// usage text, which is ours) has what is not printable escaped.
	usage, stderr := maskWriter{w: stderr}, maskWriter{w: stderr, escape: true}
	fs := flag.NewFlagSet("licensing-server scan", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // its error, which may hold an argument, is printed below
	allowFile := fs.String("allow", "", "file of masked keys (first 8 ... last 8, one a line, # comments) that are known examples, not leaks")
	fs.Usage = func() {
		fmt.Fprintln(usage, "usage: licensing-server scan [-allow FILE] [PATH...]")
		fmt.Fprintln(usage, "Prints every license key in the files and directories (standard input when none)")
		fmt.Fprintln(usage, "as file:line: masked key. Exit status: 1 keys found, 0 none, 2 error.")
		fs.SetOutput(usage)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "licensing-server scan:", err)
		return 2
	}
	allowed, err := readAllowList(*allowFile)
	if err != nil {
		fmt.Fprintln(stderr, "licensing-server scan:", err)
		return 2
	}
	out := bufio.NewWriterSize(stdout, 64<<10)
	var sc scan.Scanner
	count, failed := 0, false
	found := func(f scan.Finding) {
		if allowed[f.Masked] {
			return // a documented example key
		}
		count++
		fmt.Fprintln(out, f)
	}
	fail := func(err error) {
		failed = true
		out.Flush()
		fmt.Fprintln(stderr, "licensing-server scan:", err)
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	for _, p := range paths {
		if p == "-" {
			if err := sc.Named(stdinName, stdin, found); err != nil {
				fail(fmt.Errorf("read %s: %w", stdinName, err))
			}
			continue
		}
		sc.Paths([]string{p}, found, fail)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintln(stderr, "licensing-server scan: write:", err)
		return 2
	}
	if count > 0 {
		fmt.Fprintf(stderr, "licensing-server scan: %d license key(s) found; revoke them and remove them\n", count)
	}
	switch {
	case failed:
		return 2
	case count > 0:
		return 1
	}
	return 0
}

// readAllowList reads the masked keys of an allow file: one a line, blank
// lines and "#" comments ignored. Only masked keys are accepted, so the
// file itself never holds a key.
func readAllowList(path string) (map[string]bool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-allow: %w", err)
	}
	allowed := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !maskedKey.MatchString(line) {
			// The line is not shown: it may be the very key to keep secret.
			return nil, fmt.Errorf("-allow %s:%d: want a masked key (8 hex, \"...\", 8 hex)", path, i+1)
		}
		allowed[strings.ToLower(line)] = true
	}
	return allowed, nil
}

// maskWriter writes what it is given with every key in it masked and, with
// escape, every character that is not printable escaped (as in a Go string:
// "\n", "\x1b", "\xff") but a message's final newline: a name in a
// message can neither add a line nor send an escape sequence to the
// terminal. It is for messages, each written whole by one Write.
type maskWriter struct {
	w      io.Writer
	escape bool // escape what is not printable; false for text of ours only
}

func (m maskWriter) Write(p []byte) (int, error) {
	out := string(p)
	if m.escape {
		msg, nl := strings.CutSuffix(out, "\n")
		out = escapeUnprintable(msg)
		if nl {
			out += "\n"
		}
	}
	out = scan.MaskKeys(out) // after escaping: a key that an escape's hex digits complete is masked too
	if _, err := io.WriteString(m.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// escapeUnprintable returns s with each invalid byte and each character
// that is not printable (spaces are) escaped as strconv.Quote escapes it.
func escapeUnprintable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

var maskedKey = regexp.MustCompile(`^[0-9a-fA-F]{8}\.\.\.[0-9a-fA-F]{8}$`)
