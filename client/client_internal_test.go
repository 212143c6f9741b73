package client

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestGuardBoundsEveryCheck: a product's HTTPClient without a timeout gets
// one in the Client's copy (a slow server cannot stall Run forever); one
// with a timeout keeps it; the product's client itself is not changed.
func TestGuardBoundsEveryCheck(t *testing.T) {
	is := is.New(t)
	u, _ := url.Parse("https://licensing.example")
	none := &http.Client{}
	is.Equal(guard(none, u).Timeout, defaultTimeout)
	is.Equal(none.Timeout, time.Duration(0)) // a copy was changed
	own := &http.Client{Timeout: 5 * time.Second}
	is.Equal(guard(own, u).Timeout, 5*time.Second)
}
