package licensing

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address the rate limiter counts: the TCP peer, or, when
// the peer is a trusted proxy (or has no IP address, when TrustedProxies is
// set), the right-most X-Forwarded-For address that is not one; IPv6
// addresses grouped by /64. A hop may carry the client's port, as some
// proxies write it (203.0.113.7:41234, [2001:db8::1]:443).
func (h *Handler) clientAddr(r *http.Request) netip.Addr {
	addr := parseAddr(r.RemoteAddr)
	// A peer with no IP address is a Unix socket's, where only local
	// processes connect: a proxy, trusted when proxies are.
	if len(h.cfg.TrustedProxies) == 0 || addr.IsValid() && !trusted(h.cfg.TrustedProxies, addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(strings.TrimSpace(hops[i]))
		if !ok {
			return addr // garbage: count the proxy itself
		}
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
	return a.Unmap().WithZone("") // a zoned address is in no network
}

// parseHop reads one X-Forwarded-For hop: an address, or an address and a
// port, IPv6 in brackets with or without one.
func parseHop(hop string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(hop)
	if err != nil {
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(hop); err == nil {
			a = ap.Addr()
		} else if len(hop) > 2 && hop[0] == '[' && hop[len(hop)-1] == ']' {
			a, err = netip.ParseAddr(hop[1 : len(hop)-1])
		}
	}
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
