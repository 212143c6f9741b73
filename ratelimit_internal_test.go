package licensing

import (
	"net/netip"
	"strconv"
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
