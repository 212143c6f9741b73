package licensing_test

import (
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestClientAddrBehindProxies: behind a trusted proxy each client is
// counted by the address its proxy forwards, in every form proxies write
// it: a bare address, or an address with the client's port (as Azure's
// Application Gateway and some ingress controllers send), IPv6 in brackets.
// Clients are never counted as the proxy itself, which would make one
// bucket for all of them.
func TestClientAddrBehindProxies(t *testing.T) {
	for _, tc := range []struct{ name, first, second string }{
		{"addresses", "203.0.113.7", "198.51.100.1"},
		{"addresses with ports", "203.0.113.7:41234", "198.51.100.1:5555"},
		{"IPv6 with ports", "[2001:db8:1::7]:443", "[2001:db8:2::9]:443"},
		{"IPv6 in brackets", "[2001:db8:1::7]", "[2001:db8:2::9]"},
		{"after a trusted hop", "203.0.113.7, 127.0.0.2:80", "198.51.100.1, 127.0.0.2:80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) {
				c.RateLimit, c.RateBurst = 60, 1
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			})
			is.Equal(e.do(t, "POST", validatePath, "", `{}`, "X-Forwarded-For", tc.first).status, 400)
			is.Equal(e.do(t, "POST", validatePath, "", `{}`, "X-Forwarded-For", tc.first).status, 429)  // the same client, past its burst
			is.Equal(e.do(t, "POST", validatePath, "", `{}`, "X-Forwarded-For", tc.second).status, 400) // another client has its own
		})
	}
}

// TestClientAddrBehindAUnixSocketProxy: a peer with no IP address (a
// proxy connected over a Unix socket, where only local processes can
// connect) is trusted as a proxy when TrustedProxies is set, so each
// client it forwards has its own limit rather than all sharing one.
func TestClientAddrBehindAUnixSocketProxy(t *testing.T) {
	for _, peer := range []string{"@", ""} {
		t.Run("peer "+strconv.Quote(peer), func(t *testing.T) {
			is := is.New(t)
			e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) {
				c.RateLimit, c.RateBurst = 60, 1
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			})
			validate := func(client string) int {
				r := httptest.NewRequest("POST", validatePath, strings.NewReader(`{}`))
				r.RemoteAddr = peer // what net/http sets for a Unix socket's peer
				r.Header.Set("X-Forwarded-For", client)
				w := httptest.NewRecorder()
				e.srv.Config.Handler.ServeHTTP(w, r)
				return w.Code
			}
			is.Equal(validate("203.0.113.7"), 400)
			is.Equal(validate("203.0.113.7"), 429)  // the same client, past its burst
			is.Equal(validate("198.51.100.1"), 400) // another client has its own
		})
	}
}

// TestTrustedProxiesInEveryNotation: a trusted network written as
// IPv4-mapped IPv6 (::ffff:127.0.0.0/104, as some configurations print
// IPv4 networks) trusts those IPv4 proxies, and a proxy on a link-local
// address with a zone (fe80::1%eth0) is matched by its network; neither
// leaves every client counted as the proxy.
func TestTrustedProxiesInEveryNotation(t *testing.T) {
	for _, tc := range []struct{ name, network, peer string }{
		{"IPv4-mapped network", "::ffff:127.0.0.0/104", "127.0.0.1:5000"},
		{"zoned peer", "fe80::/10", "[fe80::1%eth0]:5000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) {
				c.RateLimit, c.RateBurst = 60, 1
				c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix(tc.network)}
			})
			validate := func(client string) int {
				r := httptest.NewRequest("POST", validatePath, strings.NewReader(`{}`))
				r.RemoteAddr = tc.peer
				r.Header.Set("X-Forwarded-For", client)
				w := httptest.NewRecorder()
				e.srv.Config.Handler.ServeHTTP(w, r)
				return w.Code
			}
			is.Equal(validate("203.0.113.7"), 400)
			is.Equal(validate("203.0.113.7"), 429)  // the same client, past its burst
			is.Equal(validate("198.51.100.1"), 400) // another client has its own
		})
	}
}
