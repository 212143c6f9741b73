package licensing

import (
	"fmt"
	"testing"

	"github.com/matryer/is"
)

// TestExpiredKeysBounded: a key's expiry is told once, again after
// forget (a renewal), and the memory stays within its bound.
func TestExpiredKeysBounded(t *testing.T) {
	is := is.New(t)
	e := newToldKeys(3)
	is.True(e.first("a"))
	is.True(!e.first("a")) // once per key
	e.forget("a")
	is.True(e.first("a")) // told again after a renewal
	for i := range 10 {
		e.first(fmt.Sprint(i))
		is.True(len(e.ids) <= 3) // bounded
	}
}
