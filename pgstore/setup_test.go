package pgstore_test

import (
	"fmt"
	"runtime"
	"testing"
)

// setupTB lets pgtest.Start run from TestMain: Fatal and Skip record the
// message and end the goroutine.
type setupTB struct {
	testing.TB
	msg string
}

func (s *setupTB) Helper()           {}
func (s *setupTB) Fatal(args ...any) { s.msg = fmt.Sprint(args...); runtime.Goexit() }
func (s *setupTB) Fatalf(format string, args ...any) {
	s.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (s *setupTB) Skip(args ...any) { s.msg = fmt.Sprint(args...); runtime.Goexit() }
func (s *setupTB) Skipf(format string, args ...any) {
	s.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
