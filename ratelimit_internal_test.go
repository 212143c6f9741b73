package licensing

import (
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestRateLimiterMemoryIsBounded(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const max = 10_000
	l := newRateLimiter[netip.Addr](0.5, 30, max, func() time.Time { return now })
	for i := 0; i < 1_000_000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		_, ok := l.allow(a)
		is.True(ok) // a fresh address always has a full bucket
	}
	is.True(l.tracked() <= 2*max) // a million addresses, bounded memory
	is.True(l.tracked() >= max/2) // and recent ones are still remembered
}

func TestRateLimiterGroupsIPv6By64(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newRateLimiter[netip.Addr](1, 2, 100, func() time.Time { return now })
	_, ok1 := l.allow(clientKey(netip.MustParseAddr("2001:db8:1:2::1")))
	_, ok2 := l.allow(clientKey(netip.MustParseAddr("2001:db8:1:2::ffff")))
	wait, ok3 := l.allow(clientKey(netip.MustParseAddr("2001:db8:1:2:abcd::1")))
	is.True(ok1 && ok2)
	is.True(!ok3) // one /64 shares a bucket
	is.Equal(wait, time.Second)
	_, ok4 := l.allow(clientKey(netip.MustParseAddr("2001:db8:1:3::1")))
	is.True(ok4) // another /64 does not
}

func TestOwnerRateLimiterMemoryIsBounded(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newRateLimiter[string](1, 2, 1000, func() time.Time { return now })
	for i := 0; i < 100_000; i++ {
		_, ok := l.allow(strconv.Itoa(i))
		is.True(ok)
	}
	is.True(l.tracked() <= 2*1000) // owners are bounded like addresses
}

// What held: refunds never lift a bucket past its burst, a refund to a
// bucket rotated into the older generation (or dropped) is harmless, and
// concurrent allow/refund pairs are race-free and end where they began.
func TestRefund(t *testing.T) {
	is := is.New(t)
	now := time.Unix(1e9, 0)
	l := newRateLimiter[netip.Addr](1.0/60, 5, 32, func() time.Time { return now }) // one bucket per shard
	a := netip.MustParseAddr("192.0.2.1")
	for range 10 {
		l.refund(a) // unknown: nothing to give back
	}
	for range 5 {
		_, ok := l.allow(a)
		is.True(ok)
	}
	_, ok := l.allow(a)
	is.True(!ok) // burst spent
	for range 50 {
		l.refund(a)
	}
	n := 0
	for {
		if _, ok := l.allow(a); !ok {
			break
		}
		n++
	}
	is.Equal(n, 5) // refunds stop at the burst
	// rotate a out of its shard: other addresses until a is forgotten
	for i := range 2000 {
		l.allow(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}))
	}
	l.refund(a) // dropped: a no-op
	var wg sync.WaitGroup
	b := netip.MustParseAddr("192.0.2.2")
	for range 8 {
		wg.Go(func() {
			for range 500 {
				if _, ok := l.allow(b); ok {
					l.refund(b)
				}
			}
		})
	}
	wg.Wait()
	n = 0
	for {
		if _, ok := l.allow(b); !ok {
			break
		}
		n++
	}
	is.Equal(n, 5) // every token given back
}
