package licensing

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address the rate limiter counts: the TCP peer, or, when
// the peer is a trusted proxy, the right-most X-Forwarded-For address that is
// not one; IPv6 addresses grouped by /64.
func (h *Handler) clientAddr(r *http.Request) netip.Addr {
	addr := parseAddr(r.RemoteAddr)
	if len(h.cfg.TrustedProxies) == 0 || !trusted(h.cfg.TrustedProxies, addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // garbage: count the proxy itself
		}
		a = a.Unmap()
		if !trusted(h.cfg.TrustedProxies, a) {
			return a
		}
		addr = a
	}
	return addr
}

func trusted(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func parseAddr(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
