package licensing

import (
	"fmt"
	"net/netip"
)

// Unlimited, as HandlerConfig.RateLimit or HandlerConfig.OwnerRateLimit,
// turns that limiter off. A zero limit is the default, never "off".
const Unlimited = -1

// The rate limits of a zero HandlerConfig, which are the reference server's
// defaults (-rate-limit, -owner-rate-limit).
const (
	DefaultRateLimit      = 30  // validations per minute per client address (burst 30)
	DefaultOwnerRateLimit = 120 // owner requests per minute per user (burst 30)
)

// Defaults of the bounds of HandlerConfig.
const (
	defaultMaxTrackedClients = 100_000
	defaultMaxBodyBytes      = 64 << 10
	defaultMaxLargeAnswers   = 2
	defaultLargeAnswerRate   = 32 << 20 // bytes a second
)

// withDefaults returns cfg with every zero field set to its default, or an
// error naming the first field whose value cannot work and what to write
// instead.
func (cfg HandlerConfig) withDefaults() (HandlerConfig, error) {
	limit := func(field string, v *int, def int, per string) error {
		switch {
		case *v == 0:
			*v = def
		case *v < 0 && *v != Unlimited:
			return fmt.Errorf("licensing: HandlerConfig.%s is %d: want the %s per minute, 0 for the default (%d), or licensing.Unlimited to turn the limiter off", field, *v, per, def)
		}
		return nil
	}
	if err := limit("RateLimit", &cfg.RateLimit, DefaultRateLimit, "validations per client address"); err != nil {
		return cfg, err
	}
	if err := limit("OwnerRateLimit", &cfg.OwnerRateLimit, DefaultOwnerRateLimit, "owner requests per user"); err != nil {
		return cfg, err
	}
	switch {
	case cfg.RateBurst < 0:
		return cfg, fmt.Errorf("licensing: HandlerConfig.RateBurst is %d: want the validations a client address may send at once, or 0 for RateLimit's worth", cfg.RateBurst)
	case cfg.RateBurst == 0 && cfg.RateLimit > 0:
		cfg.RateBurst = cfg.RateLimit
	}
	bound := func(field string, v, def int64, what string) (int64, error) {
		switch {
		case v == 0:
			return def, nil
		case v < 0:
			return 0, fmt.Errorf("licensing: HandlerConfig.%s is %d: it cannot be turned off; want the most %s, or 0 for the default (%d)", field, v, what, def)
		}
		return v, nil
	}
	n, err := bound("MaxTrackedClients", int64(cfg.MaxTrackedClients), defaultMaxTrackedClients, "client addresses the rate limiters remember")
	if err != nil {
		return cfg, err
	}
	cfg.MaxTrackedClients = int(n)
	if cfg.MaxBodyBytes, err = bound("MaxBodyBytes", cfg.MaxBodyBytes, defaultMaxBodyBytes, "bytes of a request body"); err != nil {
		return cfg, err
	}
	if n, err = bound("MaxLargeAnswers", int64(cfg.MaxLargeAnswers), defaultMaxLargeAnswers, "large answers written at once"); err != nil {
		return cfg, err
	}
	cfg.MaxLargeAnswers = int(n)
	if n, err = bound("LargeAnswerBytesPerSecond", int64(cfg.LargeAnswerBytesPerSecond), defaultLargeAnswerRate, "bytes of large answers written a second"); err != nil {
		return cfg, err
	}
	cfg.LargeAnswerBytesPerSecond = int(n)
	proxies := make([]netip.Prefix, len(cfg.TrustedProxies)) // the caller's slice is left as it is
	for i, p := range cfg.TrustedProxies {
		if err := checkTrustedProxy(p); err != nil {
			return cfg, fmt.Errorf("licensing: HandlerConfig.TrustedProxies: %w", err)
		}
		proxies[i] = unmapPrefix(p)
	}
	cfg.TrustedProxies = proxies
	return cfg, nil
}

// unmapPrefix writes an IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) as
// the IPv4 network it holds (10.0.0.0/8): client addresses are compared
// unmapped, so the mapped form would match none.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// checkTrustedProxy refuses a network that cannot be a set of proxies: an
// invalid prefix, or one that holds every address, IPv4 or IPv6, also
// written IPv4-mapped (whose X-Forwarded-For would let any client choose
// the address it is counted as).
func checkTrustedProxy(p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("%v is not a network; list the networks of your proxies, such as 10.0.0.0/8", p)
	}
	if unmapPrefix(p).Bits() == 0 {
		return fmt.Errorf("%v holds every address: any client could choose the address it is rate limited as by sending X-Forwarded-For; list only the networks of your proxies", p)
	}
	return nil
}
