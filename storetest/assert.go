package storetest

import (
	"reflect"
	"testing"
)

// is gives the suite the three assertions it uses, in the shape of
// github.com/matryer/is (is := is.New(t); is.NoErr, is.Equal, is.True), on
// plain testing: this package is imported by stores' tests, so it depends
// on the standard library and the licensing module alone.
var is assertions

type assertions struct{}

// New returns the assertions of one test; each failure stops it.
func (assertions) New(t testing.TB) *assert { return &assert{t} }

type assert struct{ t testing.TB }

// NoErr fails the test when err is not nil.
func (a *assert) NoErr(err error) {
	a.t.Helper()
	if err != nil {
		a.t.Fatalf("unexpected error: %v", err)
	}
}

// Equal fails the test unless got and want are deeply equal (two nils of
// any type count as equal).
func (a *assert) Equal(got, want any) {
	a.t.Helper()
	if isNil(got) && isNil(want) {
		return
	}
	if !reflect.DeepEqual(got, want) {
		a.t.Fatalf("got %#v, want %#v", got, want)
	}
}

// True fails the test when the condition is false.
func (a *assert) True(ok bool) {
	a.t.Helper()
	if !ok {
		a.t.Fatal("condition is false")
	}
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return r.IsNil()
	}
	return false
}
