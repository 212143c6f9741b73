package licensing

import (
	"hash/maphash"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// clientAddr is the address the rate limiter counts: the TCP peer, or, when
// the peer is a trusted proxy, the right-most X-Forwarded-For address that is
// not one.
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

// rateLimiter is a token bucket per client address. Its memory is bounded:
// each shard keeps two generations of buckets and drops the older one when
// the newer fills, so at most about 2*max addresses are remembered. An
// address forgotten that way starts again with a full bucket, which only
// happens under a flood of distinct addresses.
type rateLimiter struct {
	rate   float64 // tokens per second
	burst  float64
	now    func() time.Time
	seed   maphash.Seed
	shards [32]limiterShard
}

type limiterShard struct {
	mu       sync.Mutex
	max      int
	cur, old map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(perSecond float64, burst, maxClients int, now func() time.Time) *rateLimiter {
	l := &rateLimiter{rate: perSecond, burst: float64(burst), now: now, seed: maphash.MakeSeed()}
	per := maxClients / len(l.shards)
	if per < 1 {
		per = 1
	}
	for i := range l.shards {
		l.shards[i] = limiterShard{max: per, cur: map[netip.Addr]*bucket{}, old: map[netip.Addr]*bucket{}}
	}
	return l
}

// clientKey groups IPv6 clients by /64, the block one customer usually has.
func clientKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// allow takes a token for addr, or says how long until one is available.
func (l *rateLimiter) allow(addr netip.Addr) (time.Duration, bool) {
	addr = clientKey(addr)
	b16 := addr.As16()
	s := &l.shards[maphash.Bytes(l.seed, b16[:])%uint64(len(l.shards))]
	now := l.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.cur[addr]
	if !ok {
		if b, ok = s.old[addr]; ok {
			delete(s.old, addr)
		} else {
			b = &bucket{tokens: l.burst, last: now}
		}
		if len(s.cur) >= s.max {
			s.old, s.cur = s.cur, make(map[netip.Addr]*bucket, s.max/4)
		}
		s.cur[addr] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}

// tracked returns how many addresses the limiter remembers.
func (l *rateLimiter) tracked() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.old)
		s.mu.Unlock()
	}
	return n
}
