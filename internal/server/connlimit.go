package server

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// defaultMaxConnsPerAddr is -max-conns-per-addr's default: open
// connections one client address may hold at once. A browser opens 6 per
// host and a self-hosted instance one or two; 100 leaves room for many of
// them behind one NAT address, and bounds what one address can pin (each
// idle keep-alive connection costs the server about 20 KB).
const defaultMaxConnsPerAddr = 100

// connLimiter is a listener that caps the connections open at once from
// one client address: the TCP peer's, IPv6 grouped by /64 (the block one
// customer usually has, as the rate limiters group them). A connection over
// the cap is closed as soon as it is accepted, before a byte is read. Peers
// in the trusted proxies are not capped: each carries many clients, which
// the proxy itself must cap. Its memory is one map entry per address that
// has a connection open, so it is bounded by the open connections, which
// the descriptor limit bounds.
type connLimiter struct {
	net.Listener
	max     int
	exempt  []netip.Prefix
	refused *atomic.Uint64 // connections closed over the cap; for /metrics
	warn    func(addr netip.Addr, max int)

	mu   sync.Mutex
	open map[netip.Addr]int

	lastWarn atomic.Int64 // unix nanoseconds of the last warning
}

// limitConns wraps ln with a cap of max open connections per client
// address (0: no cap; ln is returned as it is).
func limitConns(ln net.Listener, max int, exempt []netip.Prefix, refused *atomic.Uint64, warn func(netip.Addr, int)) net.Listener {
	if max <= 0 {
		return ln
	}
	return &connLimiter{Listener: ln, max: max, exempt: exempt, refused: refused, warn: warn, open: map[netip.Addr]int{}}
}

// Accept returns the next connection whose address is under the cap.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer, ok := peerAddr(c.RemoteAddr())
		if !ok || l.trusted(peer) { // the proxy's own address, before grouping
			return c, nil
		}
		addr := groupKey(peer)
		l.mu.Lock()
		n := l.open[addr]
		if n >= l.max {
			l.mu.Unlock()
			l.refused.Add(1) // counted before the close, which the refused client can see
			c.Close()
			l.warnOnce(addr)
			continue
		}
		l.open[addr] = n + 1
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(addr) }}, nil
	}
}

func (l *connLimiter) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[addr] <= 1 {
		delete(l.open, addr)
		return
	}
	l.open[addr]--
}

func (l *connLimiter) trusted(addr netip.Addr) bool {
	for _, p := range l.exempt {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// warnOnce logs at most one refusal a minute, so that a flood does not
// become a flood of log lines; /metrics counts them all.
func (l *connLimiter) warnOnce(addr netip.Addr) {
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(time.Minute) || !l.lastWarn.CompareAndSwap(last, now) || l.warn == nil {
		return
	}
	l.warn(addr, l.max)
}

// peerAddr is the IP address of a connection's peer, unmapped; ok is false
// for a peer that is not an IP address.
func peerAddr(a net.Addr) (netip.Addr, bool) {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	return tcp.AddrPort().Addr().Unmap().WithZone(""), true
}

// groupKey is the capped address of a peer: IPv4 as it is, IPv6 by its /64.
func groupKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// limitedConn gives its address's place back once, at its first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// CloseWrite half-closes the connection as *net.TCPConn does: net/http
// uses it to end an error answer without a reset that could cut it.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
