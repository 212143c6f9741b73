package docsnippet_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/internal/docsnippet"
)

// recorder is a testing.TB that keeps what Check reports.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatal(args ...any) { r.errors = append(r.errors, fmt.Sprint(args...)) }

func TestCheck(t *testing.T) {
	is := is.New(t)
	blocks, err := docsnippet.Blocks("testdata/good")
	is.NoErr(err)
	is.Equal(len(blocks), 1) // the Go block; the shell command is left alone
	is.Equal(blocks[0], []string{"n := p.Double(2)", "fmt.Println(n)       // 4"})

	good := &recorder{TB: t}
	docsnippet.Check(good, "testdata/good")
	is.Equal(good.errors, nil) // found in the Example, comment alignment aside

	stale := &recorder{TB: t}
	docsnippet.Check(stale, "testdata/stale")
	is.Equal(len(stale.errors), 1) // a snippet only in a comment is not compiled
	is.True(strings.Contains(stale.errors[0], "n := p.Double(2, 3)"))
}
