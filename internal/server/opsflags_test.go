package server

import (
	"io"
	"testing"
	"time"

	"github.com/matryer/is"
)

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
