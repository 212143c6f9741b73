package licensing_test

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestZeroHandlerConfigLimits: HandlerConfig{} limits validation (30 a
// minute, burst 30) and failed owner authentications (120 a minute, burst
// 30) per client address, as the reference server does by default.
func TestZeroHandlerConfigLimits(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(h *licensing.HandlerConfig) { *h = licensing.HandlerConfig{} })
	_, key := e.create(t, "t-owner", "prod")
	for range licensing.DefaultRateLimit {
		r := e.do(t, "POST", validatePath, "", `{"licenseKey":"`+key+`"}`)
		is.Equal(r.status, 200) // within the burst
	}
	r := e.do(t, "POST", validatePath, "", `{"licenseKey":"`+key+`"}`)
	is.Equal(r.status, 429) // the 31st validation in the same instant is refused
	is.True(r.header.Get("Retry-After") != "")

	guesses := 0
	for ; guesses < 200; guesses++ {
		r = e.do(t, "GET", keysPath, "guess-"+strconv.Itoa(guesses), "")
		if r.status != 401 {
			break
		}
	}
	is.Equal(r.status, 429)                              // guessed owner tokens are cut off
	is.Equal(guesses, licensing.DefaultOwnerRateLimit/4) // a burst of 30 failures (the create above succeeded: not a guess)
}

// TestUnlimitedTurnsTheLimitsOff: only the word Unlimited turns a limiter off.
func TestUnlimitedTurnsTheLimitsOff(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(h *licensing.HandlerConfig) {
		*h = licensing.HandlerConfig{RateLimit: licensing.Unlimited, OwnerRateLimit: licensing.Unlimited}
	})
	for range 200 {
		is.Equal(e.do(t, "POST", validatePath, "", `{"licenseKey":"`+strings.Repeat("0", 64)+`"}`).status, 401) // never 429
	}
	for i := range 200 {
		is.Equal(e.do(t, "GET", keysPath, "guess-"+strconv.Itoa(i), "").status, 401) // never 429
	}
	is.Equal(e.do(t, "GET", keysPath, "t-owner", "").status, 200)
}

// TestHandlerConfigRefusesWhatCannotWork: NewHandler panics, naming the
// field, for a limit that is negative (other than Unlimited), a bound that
// would be turned off, or a trusted network that holds every address.
func TestHandlerConfigRefusesWhatCannotWork(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name  string
		cfg   licensing.HandlerConfig
		field string
	}{
		{"negative rate limit", licensing.HandlerConfig{RateLimit: -30}, "HandlerConfig.RateLimit is -30"},
		{"negative owner limit", licensing.HandlerConfig{OwnerRateLimit: -2}, "HandlerConfig.OwnerRateLimit is -2"},
		{"negative burst", licensing.HandlerConfig{RateBurst: -1}, "HandlerConfig.RateBurst is -1"},
		{"unbounded limiter memory", licensing.HandlerConfig{MaxTrackedClients: licensing.Unlimited}, "HandlerConfig.MaxTrackedClients is -1: it cannot be turned off"},
		{"unbounded body", licensing.HandlerConfig{MaxBodyBytes: licensing.Unlimited}, "HandlerConfig.MaxBodyBytes is -1: it cannot be turned off"},
		{"unbounded large answers", licensing.HandlerConfig{MaxLargeAnswers: licensing.Unlimited}, "HandlerConfig.MaxLargeAnswers is -1: it cannot be turned off"},
		{"unpaced large answers", licensing.HandlerConfig{LargeAnswerBytesPerSecond: -5}, "HandlerConfig.LargeAnswerBytesPerSecond is -5: it cannot be turned off"},
		{"every IPv4 address a proxy", licensing.HandlerConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, "HandlerConfig.TrustedProxies: 0.0.0.0/0 holds every address"},
		{"every IPv6 address a proxy", licensing.HandlerConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::/0")}}, "HandlerConfig.TrustedProxies: ::/0 holds every address"},
		{"every IPv4 address a proxy, IPv4-mapped", licensing.HandlerConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::ffff:0.0.0.0/96")}}, "HandlerConfig.TrustedProxies: ::ffff:0.0.0.0/96 holds every address"},
		{"a zero prefix", licensing.HandlerConfig{TrustedProxies: []netip.Prefix{{}}}, "HandlerConfig.TrustedProxies: invalid Prefix is not a network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			defer func() {
				msg, _ := recover().(string)
				is.True(strings.Contains(msg, tc.field)) // the panic names the field and its value
				is.True(strings.HasPrefix(msg, "licensing: "))
			}()
			licensing.NewHandler(e.svc, testAuth{}, tc.cfg)
			t.Fatal("NewHandler accepted the config")
		})
	}
}
