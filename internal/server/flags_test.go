package server

import (
	"io"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestParseFlags(t *testing.T) {
	env := map[string]string{"LICENSING_ADDR": "127.0.0.1:9999", "LICENSING_RATE_LIMIT": "5",
		"LICENSING_TOKEN_LIFETIME": "720h", "LICENSING_CAP_TOKENS": "true", "LICENSING_STORE": "memory"}
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
