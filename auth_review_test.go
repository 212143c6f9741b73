package licensing_test

import (
	"strconv"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/matryer/is"
)

// TestReviewTokenGuessingIsNotLimited (review): owner routes are rate
// limited per actor, after authentication (http.go actor), and validate
// and revocations per address; a request with a wrong bearer token is
// limited by neither. One address can try tokens as fast as the server
// answers: here 300 guesses in a row, each a 401, none a 429, with both
// limits set low. Configured tokens are operator-chosen strings (the config
// file takes any SHA-256), so online guessing is unthrottled.
func TestReviewTokenGuessingIsNotLimited(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(h *licensing.HandlerConfig) { h.RateLimit, h.RateBurst, h.OwnerRateLimit = 5, 5, 5 })
	limited := 0
	for i := 0; i < 300; i++ {
		r := e.do(t, "GET", "/api/v1/licensing/keys", "guess-"+strconv.Itoa(i), "")
		if r.status == 429 {
			limited++
		}
	}
	is.True(limited > 0) // some guesses from one address must be refused
}
