package pgstore_test

import (
	"fmt"
	"runtime"
	"testing"
)

// setupTB lets pgtest.Start run once for every test, outside any one of
// them: Fatal and Skip record the message (and Skip that it was a skip)
// and end the goroutine.
type setupTB struct {
	testing.TB
	msg     string
	skipped bool
}

func (s *setupTB) Helper()           {}
func (s *setupTB) Fatal(args ...any) { s.msg = fmt.Sprint(args...); runtime.Goexit() }
func (s *setupTB) Fatalf(format string, args ...any) {
	s.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (s *setupTB) Skip(args ...any) {
	s.msg, s.skipped = fmt.Sprint(args...), true
	runtime.Goexit()
}
func (s *setupTB) Skipf(format string, args ...any) {
	s.msg, s.skipped = fmt.Sprintf(format, args...), true
	runtime.Goexit()
}
