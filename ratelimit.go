package licensing

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is a token bucket per client: an address (validate,
// revocations) or an owner (owner routes). Its memory is bounded: each
// shard keeps two generations of buckets and drops the older one when the
// newer fills, so at most about 2*max clients are remembered. A client
// forgotten that way starts again with a full bucket, which only happens
// under a flood of distinct clients.
type rateLimiter[K comparable] struct {
	rate   float64 // tokens per second
	burst  float64
	now    func() time.Time
	seed   maphash.Seed
	shards [32]limiterShard[K]
}

type limiterShard[K comparable] struct {
	mu       sync.Mutex
	max      int
	cur, old map[K]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter[K comparable](perSecond float64, burst, maxClients int, now func() time.Time) *rateLimiter[K] {
	l := &rateLimiter[K]{rate: perSecond, burst: float64(burst), now: now, seed: maphash.MakeSeed()}
	per := maxClients / len(l.shards)
	if per < 1 {
		per = 1
	}
	for i := range l.shards {
		l.shards[i] = limiterShard[K]{max: per, cur: map[K]*bucket{}, old: map[K]*bucket{}}
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

// allow takes a token for client, or says how long until one is available.
func (l *rateLimiter[K]) allow(client K) (time.Duration, bool) {

	s := &l.shards[maphash.Comparable(l.seed, client)%uint64(len(l.shards))]
	now := l.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.cur[client]
	if !ok {
		if b, ok = s.old[client]; ok {
			delete(s.old, client)
		} else {
			b = &bucket{tokens: l.burst, last: now}
		}
		if len(s.cur) >= s.max {
			s.old, s.cur = s.cur, make(map[K]*bucket, s.max/4)
		}
		s.cur[client] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}

// refund gives back a token allow took (up to the burst), for a request
// that turned out not to count.
func (l *rateLimiter[K]) refund(client K) {
	s := &l.shards[maphash.Comparable(l.seed, client)%uint64(len(l.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.cur[client]
	if !ok {
		b, ok = s.old[client]
	}
	if ok {
		b.tokens = math.Min(l.burst, b.tokens+1)
	}
}

// tracked returns how many addresses the limiter remembers.
func (l *rateLimiter[K]) tracked() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.old)
		s.mu.Unlock()
	}
	return n
}
