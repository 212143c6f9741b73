package licensing_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// The docs whose backquoted names must exist, and whose ```go blocks must
// compile (README.md and docs/*.md).
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md", "BENCHMARKS.md", "SECURITY.md", "pgstore/README.md"}, files...)
}

// repoNames is what the repository declares, read with go/parser from every
// .go file of every module in it.
type repoNames struct {
	pkgs    map[string]map[string]bool // package name (not main) -> its top-level names
	types   map[string]bool            // every declared type name
	members map[string]map[string]bool // type name -> its fields and methods (any package)
	tests   map[string]bool            // Test, Benchmark, Fuzz and Example funcs of _test.go files
	top     map[string]bool            // every top-level name of every package
	goFiles map[string]bool            // base names of .go files
}

func loadRepoNames(t *testing.T, root string) *repoNames {
	t.Helper()
	n := &repoNames{pkgs: map[string]map[string]bool{}, types: map[string]bool{},
		members: map[string]map[string]bool{}, tests: map[string]bool{}, top: map[string]bool{}, goFiles: map[string]bool{}}
	member := func(typ, name string) {
		if n.members[typ] == nil {
			n.members[typ] = map[string]bool{}
		}
		n.members[typ][name] = true
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		n.goFiles[d.Name()] = true
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := strings.TrimSuffix(f.Name.Name, "_test")
		if pkg != "main" && n.pkgs[pkg] == nil {
			n.pkgs[pkg] = map[string]bool{}
		}
		declare := func(name string) {
			n.top[name] = true
			if pkg != "main" {
				n.pkgs[pkg][name] = true
			}
		}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if decl.Recv == nil {
					declare(decl.Name.Name)
					if strings.HasSuffix(path, "_test.go") {
						n.tests[decl.Name.Name] = true
					}
					continue
				}
				recv := decl.Recv.List[0].Type
				for {
					switch r := recv.(type) {
					case *ast.StarExpr:
						recv = r.X
						continue
					case *ast.IndexExpr:
						recv = r.X
						continue
					case *ast.IndexListExpr:
						recv = r.X
						continue
					}
					break
				}
				if id, ok := recv.(*ast.Ident); ok {
					member(id.Name, decl.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.ValueSpec:
						for _, id := range spec.Names {
							declare(id.Name)
						}
					case *ast.TypeSpec:
						declare(spec.Name.Name)
						n.types[spec.Name.Name] = true
						var fields *ast.FieldList
						switch typ := spec.Type.(type) {
						case *ast.StructType:
							fields = typ.Fields
						case *ast.InterfaceType:
							fields = typ.Methods
						}
						if fields == nil {
							continue
						}
						for _, field := range fields.List {
							for _, id := range field.Names {
								member(spec.Name.Name, id.Name)
							}
							if len(field.Names) == 0 { // embedded: named by its type
								typ := field.Type
								if star, ok := typ.(*ast.StarExpr); ok {
									typ = star.X
								}
								switch typ := typ.(type) {
								case *ast.Ident:
									member(spec.Name.Name, typ.Name)
								case *ast.SelectorExpr:
									member(spec.Name.Name, typ.Sel.Name)
								}
							}
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the repository's Go files: %v", err)
	}
	return n
}

// Kinds of backquoted tokens a doc may hold.
const (
	notAName = ""       // anything else: commands, flags, JSON, stdlib names, words
	testName = "test"   // TestX, BenchmarkX, FuzzX, ExampleX (a trailing * is a prefix; /sub a subtest)
	errName  = "err"    // ErrX: a top-level name in some package
	goIdent  = "ident"  // pkg.Name[.Member] of a package in this repo, or Type.member of a type declared in it
	goFile   = "gofile" // x.go without a directory: a .go file somewhere in the repo
	repoPath = "path"   // dir/…: a path whose first element is in the repo (relative to the doc or the root)
)

var (
	callSuffix  = regexp.MustCompile(`(?s)^([A-Za-z_][A-Za-z0-9_.]*)\(.*\)$`)
	testPattern = regexp.MustCompile(`^((?:Test|Benchmark|Fuzz)[A-Z0-9_][A-Za-z0-9_]*|Example(?:[A-Z_][A-Za-z0-9_]*)?)(\*|/\S*)?$`)
	errPattern  = regexp.MustCompile(`^Err[A-Z][A-Za-z0-9_]*$`)
	qualified   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)
	semverTag   = regexp.MustCompile(`(^|/)v[0-9]+\.[0-9]+\.[0-9]+$`)
	bareGoFile  = regexp.MustCompile(`^[A-Za-z0-9_\-]+\.go$`)
	pathPattern = regexp.MustCompile(`^(\./)?[A-Za-z0-9_\-]+(\.[A-Za-z0-9]+)?(/[A-Za-z0-9_.\-]+)*/?$`)
	fileSuffix  = regexp.MustCompile(`\.(go|md|ya?ml|json|png|sql|service|txt|pem|tar|js|css|html|sh|mod|sum|work)$`)
)

// classify says whether a backquoted token names something the repository
// must hold, and what: the kind and the name to look up.
func classify(tok string) (kind, name string) {
	tok = strings.TrimSpace(tok)
	if m := callSuffix.FindStringSubmatch(tok); m != nil {
		tok = m[1]
	}
	switch {
	case testPattern.MatchString(tok):
		return testName, tok
	case errPattern.MatchString(tok):
		return errName, tok
	case semverTag.MatchString(tok):
		return notAName, "" // a release tag such as pgstore/v0.1.0
	case strings.Contains(tok, "/") && pathPattern.MatchString(tok):
		return repoPath, strings.TrimPrefix(tok, "./")
	case bareGoFile.MatchString(tok):
		return goFile, tok
	case fileSuffix.MatchString(tok):
		return notAName, "" // a state file, a file named elsewhere: not a repo path
	case qualified.MatchString(tok):
		return goIdent, tok
	}
	return notAName, ""
}

// resolve reports whether the name exists; counted is false when a token
// that looked like a name turns out not to be one of this repo's (a stdlib
// package, a first path element the repo does not have).
func (n *repoNames) resolve(kind, name, docDir string) (counted, ok bool) {
	switch kind {
	case testName:
		m := testPattern.FindStringSubmatch(name)
		if m[2] == "*" {
			for fn := range n.tests {
				if strings.HasPrefix(fn, m[1]) {
					return true, true
				}
			}
			return true, false
		}
		return true, n.tests[m[1]]
	case errName:
		return true, n.top[name]
	case goFile:
		return true, n.goFiles[name]
	case repoPath:
		first := strings.SplitN(name, "/", 2)[0]
		for _, dir := range []string{docDir, "."} {
			if _, err := os.Stat(filepath.Join(dir, first)); err != nil {
				continue
			}
			_, err := os.Stat(filepath.Join(dir, name))
			return true, err == nil
		}
		return false, false
	case goIdent:
		parts := strings.Split(name, ".")
		if names, isPkg := n.pkgs[parts[0]]; isPkg {
			if !ast.IsExported(parts[1]) {
				return false, false // licensing.localhost, filestore.go: not a Go name
			}
			if !names[parts[1]] {
				return true, false
			}
			if len(parts) > 2 {
				return true, n.members[parts[1]][parts[2]]
			}
			return true, true
		}
		if n.types[parts[0]] && ast.IsExported(parts[0]) {
			return true, n.members[parts[0]][parts[1]]
		}
	}
	return false, false
}

// fence finds the lines of fenced code blocks and their info string.
var fence = regexp.MustCompile("(?m)^\\s*```")

// docText blanks fenced code blocks out of a markdown text, keeping offsets.
func docText(text string) string {
	b := []byte(text)
	in := false
	start := 0
	for _, loc := range fence.FindAllStringIndex(text, -1) {
		if !in {
			start = loc[0]
		} else {
			for i := start; i < loc[1]; i++ {
				if b[i] != '\n' {
					b[i] = ' '
				}
			}
		}
		in = !in
	}
	return string(b)
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// missingNames lists, as "file:line: `token`", every backquoted name of the
// doc that the repository does not hold.
func (n *repoNames) missingNames(file, text string) []string {
	var missing []string
	prose := docText(text)
	for _, m := range codeSpan.FindAllStringSubmatchIndex(prose, -1) {
		tok := strings.ReplaceAll(prose[m[2]:m[3]], "\n", " ")
		kind, name := classify(tok)
		if kind == notAName {
			continue
		}
		if counted, ok := n.resolve(kind, name, filepath.Dir(file)); counted && !ok {
			line := strings.Count(text[:m[0]], "\n") + 1
			missing = append(missing, fmt.Sprintf("%s:%d: `%s` names a %s this repository does not hold", file, line, tok, kind))
		}
	}
	return missing
}

func TestDocsNameOnlyWhatExists(t *testing.T) {
	is := is.New(t)
	names := loadRepoNames(t, ".")
	checked := 0
	for _, file := range docFiles(t) {
		text, err := os.ReadFile(file)
		is.NoErr(err)
		for _, m := range names.missingNames(file, string(text)) {
			t.Error(m)
		}
		checked++
	}
	is.True(checked >= 5) // README, BENCHMARKS, SECURITY, pgstore/README and docs/*.md were read
}

func TestDocNameMatcher(t *testing.T) {
	names := loadRepoNames(t, ".")
	cases := []struct {
		tok     string
		kind    string
		counted bool // a name of this repo's, so it must exist
		exists  bool
	}{
		{"licensing.NewHandler", goIdent, true, true},
		{"licensing.Config.Observer", goIdent, true, true},
		{"filestore.ErrPepperMismatch", errName + "-qualified", true, true},
		{"Service.ImportKey(ctx, orgID, key, issuedAt)", goIdent, true, true},
		{"Service.ValidateKey", goIdent, true, true},
		{"Main.Stores", goIdent, true, true},
		{"Options.PepperFingerprint", goIdent, true, true},
		{"Service.verify", goIdent, true, false}, // a method that is gone
		{"licensing.NoSuchThing", goIdent, true, false},
		{"client.Config.NoSuchField", goIdent, true, false},
		{"licensing.localhost", goIdent, false, false}, // the default issuer, not a Go name
		{"json.Unmarshal", goIdent, false, false},      // not a package of this repo
		{"slog.Default()", goIdent, false, false},
		{"ErrKeyLength", errName, true, true},
		{"ErrNoSuchError", errName, true, false},
		{"TestDocNameMatcher", testName, true, true},
		{"TestNoSuchTestAnywhere", testName, true, false},
		{"BenchmarkValidateKey/keys=1000", testName, true, true},
		{"BenchmarkNoSuch/keys=1000", testName, true, false},
		{"FuzzDecodeFast", testName, true, true},
		{"Example", testName, true, true},
		{"TestRecorder*", testName, true, true},
		{"TestNoSuchPrefix*", testName, true, false},
		{"battery_test.go", goFile, true, true},
		{"no_such_file.go", goFile, true, false},
		{"docs/server.md", repoPath, true, true},
		{"internal/server/tls.go", repoPath, true, true},
		{"internal/server/no_such.go", repoPath, true, false},
		{"examples/systemd/licensing-server.service", repoPath, true, true},
		{"./cmd/licensing-server", repoPath, true, true},
		{"pgstore/v0.1.0", notAName, false, false}, // a release tag
		{"store/", repoPath, false, false},         // a state-directory entry, not a repo path
		{"/etc/licensing/config.json", notAName, false, false},
		{"<data>/demo.json", notAName, false, false},
		{"demo.json", notAName, false, false},
		{"server.md", notAName, false, false},
		{"go.mod", notAName, false, false},
		{"-rate-limit", notAName, false, false},
		{"RS256", notAName, false, false},
		{"Testing", notAName, false, false},
		{"GET /api/v1/licensing/keys", notAName, false, false},
		{"ValidateKey/keys=1000", notAName, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.tok, func(t *testing.T) {
			is := is.New(t)
			kind, name := classify(tc.tok)
			want := strings.TrimSuffix(tc.kind, "-qualified")
			if tc.kind == errName+"-qualified" {
				want = goIdent
			}
			is.Equal(kind, want) // the kind of token
			counted, ok := names.resolve(kind, name, ".")
			is.Equal(counted, tc.counted) // whether it is a name this repo must hold
			is.Equal(ok, tc.exists)       // whether the repo holds it
		})
	}
}

func TestDocNamesReportAMadeUpName(t *testing.T) {
	is := is.New(t)
	names := loadRepoNames(t, ".")
	doc := "# Doc\n\nCall `licensing.NewHandler` and\n`Service.madeUp`, tested by `TestMadeUpName`.\n\n```go\nx := `Service.alsoMadeUp` // in a code block: not prose\n```\n"
	got := names.missingNames("doc.md", doc)
	is.Equal(len(got), 2) // the two made-up names of the prose, not the code block's
	is.True(strings.HasPrefix(got[0], "doc.md:4: `Service.madeUp`"))
	is.True(strings.HasPrefix(got[1], "doc.md:4: `TestMadeUpName`"))
}

// goBlock is one ```go block of a doc and the line its code starts on.
type goBlock struct {
	file string
	line int
	code string
}

func goBlocks(file, text string) []goBlock {
	var blocks []goBlock
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		start := i + 1
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
		}
		blocks = append(blocks, goBlock{file, start + 1, strings.Join(lines[start:i], "\n")})
	}
	return blocks
}

// snippetImports are the packages a snippet may use by name; the test
// imports those it mentions.
var snippetImports = map[string]string{
	"licensing": "github.com/licensekit/licensing",
	"client":    "github.com/licensekit/licensing/client",
	"filestore": "github.com/licensekit/licensing/filestore",
	"ownerpage": "github.com/licensekit/licensing/ownerpage",
	"context":   "context",
	"errors":    "errors",
	"fmt":       "fmt",
	"http":      "net/http",
	"json":      "encoding/json",
	"log":       "log",
	"os":        "os",
	"slog":      "log/slog",
	"time":      "time",
}

// snippetApp declares the application's own values that the docs' snippets
// use as given (a program that embeds the library has them).
const snippetApp = `package main

import (
	"context"
	"net/http"

	"github.com/licensekit/licensing"
)

var (
	ctx    = context.Background()
	mux    = http.NewServeMux()
	myOrgs licensing.Organizations
	myAuth licensing.Authenticator
	pepper []byte
	publicKeys []byte
)
`

// snippetProgram turns a block into a main package: a block that starts
// with a package clause is used as it is; any other is the body of main,
// with //line comments so that errors name the doc's lines.
func snippetProgram(b goBlock) (main string, wantApp bool) {
	if strings.HasPrefix(strings.TrimSpace(b.code), "package ") {
		return fmt.Sprintf("//line %s:%d\n%s\n", b.file, b.line, b.code), false
	}
	// A package is used where its name is an identifier followed by a
	// period and not preceded by one (comments and strings are tokens of
	// their own, so "licensing.example.com" is not a use).
	used := map[string]bool{}
	var sc scanner.Scanner
	src := []byte(b.code)
	sc.Init(token.NewFileSet().AddFile(b.file, -1, len(src)), src, nil, 0)
	var prev, prev2 token.Token
	var prevLit string
	for {
		_, tok, lit := sc.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.PERIOD && prev == token.IDENT && prev2 != token.PERIOD {
			used[prevLit] = true
		}
		prev2, prev, prevLit = prev, tok, lit
	}
	var imports []string
	for name, path := range snippetImports {
		if used[name] {
			imports = append(imports, fmt.Sprintf("%q", path))
		}
	}
	sort.Strings(imports)
	return fmt.Sprintf("package main\n\nimport (\n%s\n)\n\nfunc main() {\n//line %s:%d\n%s\n}\n",
		strings.Join(imports, "\n"), b.file, b.line, b.code), true
}

// TestDocGoSnippetsCompile builds every ```go block of README.md and
// docs/*.md as a program outside this module that requires it through a
// replace directive, as an embedder working from a local clone would.
func TestDocGoSnippetsCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the docs' snippets with the go command; skipped with -short")
	}
	is := is.New(t)
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		t.Fatalf("the go command is needed to build the docs' snippets: %v", err)
	}
	root, err := filepath.Abs(".")
	is.NoErr(err)
	var blocks []goBlock
	for _, file := range append([]string{"README.md"}, must(filepath.Glob("docs/*.md"))...) {
		text, err := os.ReadFile(file)
		is.NoErr(err)
		blocks = append(blocks, goBlocks(file, string(text))...)
	}
	is.True(len(blocks) >= 2) // the README's embedding and client snippets at least

	dir := t.TempDir()
	gomod, err := os.ReadFile("go.mod")
	is.NoErr(err)
	// The root module's go line and requirements, so that the snippets
	// build with the versions the module is tested with.
	goLine, requires := "", []string{"\tgithub.com/licensekit/licensing v0.0.0"}
	inRequire := false
	for _, line := range strings.Split(string(gomod), "\n") {
		switch {
		case strings.HasPrefix(line, "go "):
			goLine = line
		case line == "require (":
			inRequire = true
		case line == ")":
			inRequire = false
		case inRequire && strings.TrimSpace(line) != "":
			requires = append(requires, line)
		case strings.HasPrefix(line, "require "):
			requires = append(requires, "\t"+strings.TrimPrefix(line, "require "))
		}
	}
	mod := "module docsnippets\n\n" + goLine + "\n\nrequire (\n" + strings.Join(requires, "\n") +
		"\n)\n\nreplace github.com/licensekit/licensing => " + root + "\n"
	is.NoErr(os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644))
	sum, err := os.ReadFile("go.sum")
	is.NoErr(err)
	is.NoErr(os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	for i, b := range blocks {
		pkg := filepath.Join(dir, fmt.Sprintf("snippet%02d", i))
		is.NoErr(os.Mkdir(pkg, 0o755))
		main, wantApp := snippetProgram(b)
		is.NoErr(os.WriteFile(filepath.Join(pkg, "main.go"), []byte(main), 0o644))
		if wantApp {
			is.NoErr(os.WriteFile(filepath.Join(pkg, "app.go"), []byte(snippetApp), 0o644))
		}
	}
	cmd := exec.Command(gobin, "build", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("a Go snippet of the docs does not compile (%v):\n%s\ngo.mod:\n%s", err, out, mod)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
