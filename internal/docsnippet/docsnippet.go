// Package docsnippet holds package documentation to the code that tests
// compile: every Go code block of a package's doc comment must appear, line
// for line, in the code of one of the package's test files (an Example
// function, usually), so a snippet that no longer compiles fails the build
// of that test. Code blocks that are shell commands (a first word of go,
// curl or psql, after any VAR=value) are left alone.
//
// It imports only the standard library; a package's test calls Check.
package docsnippet

import (
	"fmt"
	"go/ast"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// shell matches the first line of a code block that is a shell command.
var shell = regexp.MustCompile(`^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:go|curl|psql)\s`)

// Blocks returns the Go code blocks of the package doc comment of the
// package in dir (its non-test files), each as its lines.
func Blocks(dir string) ([][]string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var text string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			return nil, err
		}
		if f.Doc != nil {
			if text != "" {
				return nil, fmt.Errorf("%s: a second package doc comment", name)
			}
			text = f.Doc.Text()
		}
	}
	var blocks [][]string
	for _, b := range new(comment.Parser).Parse(text).Content {
		code, ok := b.(*comment.Code)
		if !ok || shell.MatchString(code.Text) {
			continue
		}
		blocks = append(blocks, strings.Split(strings.TrimRight(code.Text, "\n"), "\n"))
	}
	return blocks, nil
}

// Check fails t for each Go code block of dir's package doc that does not
// appear in a function (declaration or body) of one of dir's test files. Lines are compared
// with their indentation and runs of spaces made one, so gofmt's alignment
// of comments may differ; blank lines must match too.
func Check(t testing.TB, dir string) {
	t.Helper()
	blocks, err := Blocks(dir)
	if err != nil {
		t.Fatal(err)
	}
	bodies, err := testBodies(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range blocks {
		if !contains(bodies, block) {
			t.Errorf("%s: this code of the package doc is in no test function, so nothing compiles it: put it, line for line, in an Example\n\t%s",
				dir, strings.Join(block, "\n\t"))
		}
	}
}

// testBodies returns the lines of every function of dir's test files, from
// func to the closing brace (its doc comment left out).
func testBodies(dir string) ([][]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	var bodies [][]string
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
				from, to := fset.Position(fn.Pos()).Offset, fset.Position(fn.End()).Offset
				bodies = append(bodies, strings.Split(string(src[from:to]), "\n"))
			}
		}
	}
	return bodies, nil
}

func normalize(line string) string { return strings.Join(strings.Fields(line), " ") }

// contains reports whether block's lines follow one another in a body.
func contains(bodies [][]string, block []string) bool {
	for _, body := range bodies {
	start:
		for i := 0; i+len(block) <= len(body); i++ {
			for j, line := range block {
				if normalize(body[i+j]) != normalize(line) {
					continue start
				}
			}
			return true
		}
	}
	return false
}
