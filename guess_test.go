package licensing_test

import (
	"strconv"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestTokenGuessingIsLimited: failed authentications on owner routes are
// counted per client address at the owner rate; past the burst, the address
// gets 429 with Retry-After before any token is tried, the right token
// included, while another address is not affected. Time refills the bucket.
func TestTokenGuessingIsLimited(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(h *licensing.HandlerConfig) { h.OwnerRateLimit = 20 }) // burst 5
	for i := range 5 {
		r := e.do(t, "GET", keysPath, "guess-"+strconv.Itoa(i), "")
		is.Equal(r.status, 401) // tried
	}
	r := e.do(t, "GET", keysPath, "guess-5", "")
	is.Equal(r.status, 429)
	is.Equal(r.header.Get("Retry-After"), "3") // 20 a minute: a token every 3 s
	r = e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 429) // refused before the credential is tried
	r = e.do(t, "GET", keysPath, "t-owner", "", "X-Forwarded-For", "203.0.113.9")
	is.Equal(r.status, 429) // a header does not make another address (no trusted proxy)
	e.clock.Add(3e9)
	r = e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 200) // a refilled token: the owner gets in
	for range 20 {
		r = e.do(t, "GET", keysPath, "t-owner", "")
		if r.status != 200 {
			break
		}
	}
	is.Equal(r.status, 429) // successes count against the user's own limit, as before
}

// TestTokenGuessingOffWithTheOwnerLimit: OwnerRateLimit Unlimited turns the count
// of failures off too.
func TestTokenGuessingOffWithTheOwnerLimit(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(h *licensing.HandlerConfig) { h.OwnerRateLimit = licensing.Unlimited })
	for i := range 50 {
		is.Equal(e.do(t, "GET", keysPath, "guess-"+strconv.Itoa(i), "").status, 401)
	}
	is.Equal(e.do(t, "GET", keysPath, "t-owner", "").status, 200)
}
