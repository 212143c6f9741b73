package storetest

import (
	"errors"
	"testing"
)

// recorder is a testing.TB that records a failure instead of stopping.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatal(...any)          { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

// TestAssertionsFail: the suite's own assertions fail when they must, so a
// broken store cannot pass the suite through them.
func TestAssertionsFail(t *testing.T) {
	var nilMap map[string]int
	cases := []struct {
		name   string
		check  func(a *assert)
		failed bool
	}{
		{"NoErr with an error", func(a *assert) { a.NoErr(errors.New("x")) }, true},
		{"NoErr with nil", func(a *assert) { a.NoErr(nil) }, false},
		{"Equal, different", func(a *assert) { a.Equal(1, 2) }, true},
		{"Equal, different types", func(a *assert) { a.Equal(int64(1), 1) }, true},
		{"Equal, same", func(a *assert) { a.Equal([]string{"a"}, []string{"a"}) }, false},
		{"Equal, two nils", func(a *assert) { a.Equal(nilMap, nil) }, false},
		{"True with false", func(a *assert) { a.True(false) }, true},
		{"True with true", func(a *assert) { a.True(true) }, false},
	}
	for _, tc := range cases {
		r := &recorder{TB: t}
		tc.check(is.New(r))
		if r.failed != tc.failed {
			t.Errorf("%s: failed = %v, want %v", tc.name, r.failed, tc.failed)
		}
	}
}
