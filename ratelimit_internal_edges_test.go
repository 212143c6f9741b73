package licensing

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

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
