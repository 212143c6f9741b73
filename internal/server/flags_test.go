package server

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{"LICENSING_ADDR": "127.0.0.1:9999", "LICENSING_RATE_LIMIT": "5",
		"LICENSING_TOKEN_LIFETIME": "720h", "LICENSING_CAP_TOKENS": "true", "LICENSING_STORE": "memory",
		"LICENSING_OWNER_RATE_LIMIT": "0", "LICENSING_ISSUER": "licensing.acme.test"}
	tests := []struct {
		name    string
		args    []string
		check   func(is *is.I, m *Main)
		wantErr bool
	}{
		{"defaults", nil, func(is *is.I, m *Main) {
			is.Equal(m.Addr, "127.0.0.1:8080")
			is.Equal(m.StoreKind, "file") // the durable store by default
			is.Equal(m.DataDir, "./licensing-data")
			is.Equal(m.RateLimit, 30)
			is.Equal(m.RateBurst, 30)
			is.Equal(m.TokenLifetime, 365*24*time.Hour)
			is.Equal(m.OwnerRateLimit, 120)
			is.Equal(m.SigningKeyOverlap, 30*24*time.Hour)
			is.Equal(m.Issuer, "") // the config file's, else DefaultIssuer
		}, false},
		{"flags", []string{"-addr", ":1", "-rate-limit", "0", "-store", "memory", "-cap-tokens", "-token-grace", "168h"}, func(is *is.I, m *Main) {
			is.Equal(m.Addr, ":1")
			is.Equal(m.RateLimit, 0) // 0 turns the limiter off
			is.True(m.CapTokens)
			is.Equal(m.TokenGrace, 168*time.Hour)
		}, false},
		{"bad burst", []string{"-rate-burst", "0"}, nil, true},
		{"stray argument", []string{"extra"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			m := &Main{Getenv: func(string) string { return "" }, Stderr: io.Discard}
			err := m.ParseFlags(tc.args)
			is.Equal(err != nil, tc.wantErr)
			if tc.check != nil {
				tc.check(is, m)
			}
		})
	}
	t.Run("environment", func(t *testing.T) {
		is := is.New(t)
		m := &Main{Getenv: func(k string) string { return env[k] }, Stderr: io.Discard}
		is.NoErr(m.ParseFlags(nil))
		is.Equal(m.Addr, "127.0.0.1:9999") // each flag has its variable
		is.Equal(m.RateLimit, 5)
		is.Equal(m.StoreKind, "memory")
		is.Equal(m.TokenLifetime, 720*time.Hour)
		is.True(m.CapTokens)
		is.Equal(m.OwnerRateLimit, 0) // 0 turns it off
		is.Equal(m.Issuer, "licensing.acme.test")
		is.NoErr(m.ParseFlags([]string{"-addr", "127.0.0.1:1"}))
		is.Equal(m.Addr, "127.0.0.1:1") // and the flag wins
	})
}

func TestRedactPath(t *testing.T) {
	is := is.New(t)
	key := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	is.Equal(redactPath("/api/v1/licensing/validate/"+key), "/api/v1/licensing/validate/[redacted]")
	is.Equal(redactPath("/api/v1/licensing/keys/019c8a12-4567-7abc-def0-123456789abc"), "/api/v1/licensing/keys/019c8a12-4567-7abc-def0-123456789abc") // ids stay
	is.Equal(len(redactPath("/"+string(make([]byte, 1000)))) <= 260, true)
}

func TestInvalidFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // each in the one stderr line
	}{
		{"negative rate limit", []string{"-rate-limit", "-1"}, nil, []string{`-rate-limit "-1"`, "whole number >= 0"}},
		{"rate limit not a number", []string{"-rate-limit", "abc"}, nil, []string{`-rate-limit "abc"`, "whole number >= 0"}},
		{"zero burst", []string{"-rate-burst", "0"}, nil, []string{`-rate-burst "0"`, ">= 1"}},
		{"negative owner rate limit", []string{"-owner-rate-limit", "-3"}, nil, []string{"-owner-rate-limit", "whole number >= 0"}},
		{"negative lifetime", []string{"-token-lifetime", "-5h"}, nil, []string{`-token-lifetime "-5h"`, "positive duration"}},
		{"zero lifetime", []string{"--token-lifetime=0s"}, nil, []string{`-token-lifetime "0s"`, "positive duration"}},
		{"negative grace", []string{"-token-grace", "-1h"}, nil, []string{"-token-grace", "duration >= 0"}},
		{"negative overlap", []string{"-signing-key-overlap", "-1s"}, nil, []string{"-signing-key-overlap", "duration >= 0"}},
		{"duration without unit", []string{"-token-grace", "10"}, nil, []string{`-token-grace "10"`, "duration >= 0"}},
		{"missing value", []string{"-rate-limit"}, nil, []string{"-rate-limit needs a value", "whole number"}},
		{"stray argument", []string{"extra"}, nil, []string{`unexpected argument "extra"`, "owner-token", "public-keys", "scan", "backup", "restore"}},
		{"argument after flags", []string{"-rate-limit", "5", "serve"}, nil, []string{`unexpected argument "serve"`}},
		{"unknown flag", []string{"-rate-limt", "5"}, nil, []string{"-rate-limt", "licensing-server -h"}},
		{"unknown store", []string{"-store", "sqlite"}, nil, []string{`-store "sqlite"`, "file, memory"}},
		{"bad address", []string{"-addr", "localhost"}, nil, []string{`-addr "localhost"`, "host:port"}},
		{"port out of range", []string{"-addr", ":99999"}, nil, []string{`-addr ":99999"`, "port 99999 is out of range", "0 to 65535"}},
		{"port out of range from the environment", nil, map[string]string{"LICENSING_ADDR": "0.0.0.0:70000"}, []string{`LICENSING_ADDR="0.0.0.0:70000"`, "port 70000 is out of range"}},
		{"postgres store in the file-only binary", []string{"-store", "postgres"}, nil, []string{`-store "postgres"`, "licensing-server-pg", "pgstore/cmd/licensing-server-pg", "file, memory"}},
		{"bad proxies", []string{"-trusted-proxies", "10.0.0.0/8,office"}, nil, []string{"-trusted-proxies", "networks"}},
		{"every address a proxy", []string{"-trusted-proxies", "10.0.0.0/8, ::/0"}, nil, []string{`-trusted-proxies "10.0.0.0/8, ::/0"`, "never 0.0.0.0/0 or ::/0"}},
		{"every IPv4 address a proxy, IPv4-mapped", []string{"-trusted-proxies", "::ffff:0.0.0.0/96"}, nil, []string{`-trusted-proxies "::ffff:0.0.0.0/96"`, "never 0.0.0.0/0 or ::/0"}},
		{"bad bool flag", []string{"-cap-tokens=maybe"}, nil, []string{`-cap-tokens "maybe"`, "true or false"}},
		{"rate limit from the environment", nil, map[string]string{"LICENSING_RATE_LIMIT": "abc"}, []string{`LICENSING_RATE_LIMIT="abc"`, "whole number >= 0"}},
		{"negative rate limit from the environment", nil, map[string]string{"LICENSING_RATE_LIMIT": "-2"}, []string{`LICENSING_RATE_LIMIT="-2"`, "whole number >= 0"}},
		{"owner rate limit from the environment", nil, map[string]string{"LICENSING_OWNER_RATE_LIMIT": "lots"}, []string{"LICENSING_OWNER_RATE_LIMIT", "whole number"}},
		{"lifetime from the environment", nil, map[string]string{"LICENSING_TOKEN_LIFETIME": "1 year"}, []string{`LICENSING_TOKEN_LIFETIME="1 year"`, "positive duration"}},
		{"negative lifetime from the environment", nil, map[string]string{"LICENSING_TOKEN_LIFETIME": "-1h"}, []string{`LICENSING_TOKEN_LIFETIME="-1h"`, "positive duration"}},
		{"bool from the environment", nil, map[string]string{"LICENSING_CAP_TOKENS": "yes"}, []string{`LICENSING_CAP_TOKENS="yes"`, "true or false"}},
		{"store from the environment", nil, map[string]string{"LICENSING_STORE": "mysql"}, []string{`LICENSING_STORE="mysql"`, "file, memory"}},
		{"negative shutdown delay", []string{"-shutdown-delay", "-5s"}, nil, []string{`-shutdown-delay "-5s"`, "duration >= 0"}},
		{"shutdown delay without unit from the environment", nil, map[string]string{"LICENSING_SHUTDOWN_DELAY": "30"}, []string{`LICENSING_SHUTDOWN_DELAY="30"`, "duration >= 0"}},
		{"negative shutdown delay from the environment", nil, map[string]string{"LICENSING_SHUTDOWN_DELAY": "-1m"}, []string{`LICENSING_SHUTDOWN_DELAY="-1m"`, "duration >= 0"}},
		{"negative connection cap", []string{"-max-conns-per-addr", "-1"}, nil, []string{`-max-conns-per-addr "-1"`, "whole number >= 0"}},
		{"connection cap from the environment", nil, map[string]string{"LICENSING_MAX_CONNS_PER_ADDR": "many"}, []string{`LICENSING_MAX_CONNS_PER_ADDR="many"`, "whole number >= 0"}},
		{"tls cert without key", []string{"-tls-cert", "/c.pem"}, nil, []string{"-tls-cert and -tls-key"}},
		{"tls key without cert from the environment", nil, map[string]string{"LICENSING_TLS_KEY": "/k.pem"}, []string{"-tls-cert and -tls-key"}},
		{"long value is cut", []string{"-rate-limit", strings.Repeat("9", 500)}, nil, []string{"-rate-limit", "..."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			var stderr strings.Builder
			m := &Main{Getenv: func(k string) string { return tc.env[k] }, Stderr: &stderr}
			is.Equal(m.Main(tc.args), 2) // a usage error
			out := stderr.String()
			is.True(strings.HasPrefix(out, "licensing-server: "))
			is.Equal(strings.Count(out, "\n"), 1) // one line
			is.True(len(out) < 400)
			for _, w := range tc.want {
				is.True(strings.Contains(out, w)) // names the flag or variable and what it allows
			}
		})
	}
	t.Run("a flag on the command line wins over a bad variable", func(t *testing.T) {
		is := is.New(t)
		m := &Main{Getenv: func(k string) string { return map[string]string{"LICENSING_RATE_LIMIT": "abc"}[k] }, Stderr: io.Discard}
		is.NoErr(m.ParseFlags([]string{"-rate-limit", "7"}))
		is.Equal(m.RateLimit, 7)
	})
	t.Run("help", func(t *testing.T) {
		is := is.New(t)
		var stderr strings.Builder
		m := &Main{Getenv: func(string) string { return "" }, Stderr: &stderr}
		is.Equal(m.Main([]string{"-h"}), 0)
		is.True(strings.Contains(stderr.String(), "-owner-rate-limit"))
		is.True(strings.Contains(stderr.String(), "-rotate-signing-keys"))
		for _, command := range []string{"owner-token", "public-keys", "scan", "backup", "restore"} {
			is.True(strings.Contains(stderr.String(), "licensing-server "+command+" ")) // every command is named
		}
	})
}

func TestOpsFlags(t *testing.T) {
	env := map[string]string{"LICENSING_TLS_CERT": "/c.pem", "LICENSING_TLS_KEY": "/k.pem", "LICENSING_SHUTDOWN_DELAY": "7s",
		"LICENSING_MAX_CONNS_PER_ADDR": "20"}
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		cert  string
		key   string
		wait  time.Duration
		conns int
	}{
		{"defaults", nil, nil, "", "", 0, 100},
		{"environment", env, nil, "/c.pem", "/k.pem", 7 * time.Second, 20},
		{"flags win", env, []string{"-tls-cert", "/x.pem", "-tls-key", "/y.pem", "-shutdown-delay", "1s", "-max-conns-per-addr", "0"},
			"/x.pem", "/y.pem", time.Second, 0},
	}
	// A bad LICENSING_SHUTDOWN_DELAY is refused, as every bad value is
	// (TestInvalidFlagsAndEnvironment), not taken as 0.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			m := &Main{Getenv: func(k string) string { return tc.env[k] }, Stderr: io.Discard}
			is.NoErr(m.ParseFlags(tc.args))
			is.Equal(m.TLSCert, tc.cert)
			is.Equal(m.TLSKey, tc.key)
			is.Equal(m.ShutdownDelay, tc.wait)
			is.Equal(m.MaxConnsPerAddr, tc.conns)
		})
	}
}
