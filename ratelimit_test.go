package licensing_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

func TestRateLimit(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) {
		c.RateLimit, c.RateBurst = 60, 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	_, key := e.create(t, "t-owner", "prod")
	for i := 0; i < 3; i++ {
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "203.0.113.7").status, 200)
	}
	r := e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "203.0.113.7")
	is.Equal(r.status, 429) // past the burst
	is.Equal(r.raw, `{"error":"Too many requests."}`+"\n")
	is.Equal(r.header.Get("Retry-After"), "1")                                                                        // one token a second
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "198.51.100.1").status, 200) // another address is served
	// a spoofed hop left of the real client does not help
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "10.9.9.9, 203.0.113.7").status, 429)
	e.clock.Add(time.Second)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, ""), "X-Forwarded-For", "203.0.113.7").status, 200) // refilled
}

func TestRateLimitIgnoresForwardedForFromUntrustedPeers(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit, c.RateBurst = 60, 2 })
	for i := 0; i < 2; i++ {
		e.do(t, "POST", validatePath, "", `{}`, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
	}
	r := e.do(t, "POST", validatePath, "", `{}`, "X-Forwarded-For", "203.0.113.99")
	is.Equal(r.status, 429) // the peer is counted, whatever the header says
}

func TestOwnerRateLimit(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.OwnerRateLimit = 20 }) // burst 5
	for i := 0; i < 5; i++ {
		is.Equal(e.do(t, "GET", keysPath, "t-owner", "").status, 200)
	}
	r := e.do(t, "POST", keysPath, "t-owner", `{}`)
	is.Equal(r.status, 429) // the sixth owner request within the burst
	is.Equal(r.raw, `{"error":"Too many requests."}`+"\n")
	is.Equal(r.header.Get("Retry-After"), "3")                    // 20 a minute: one every 3 s
	is.Equal(e.count(t), 0)                                       // nothing created
	is.Equal(e.do(t, "GET", keysPath, "t-other", "").status, 200) // another owner has a bucket of their own
	is.Equal(e.do(t, "GET", keysPath, "", "").status, 401)        // unauthenticated requests are not counted against anyone
	e.clock.Add(3 * time.Second)
	is.Equal(e.do(t, "POST", keysPath, "t-owner", `{}`).status, 201) // a token again
}
