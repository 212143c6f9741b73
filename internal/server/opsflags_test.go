package server

import (
	"io"
	"testing"
	"time"

	"github.com/matryer/is"
)

func TestOpsFlags(t *testing.T) {
	env := map[string]string{"LICENSING_TLS_CERT": "/c.pem", "LICENSING_TLS_KEY": "/k.pem", "LICENSING_SHUTDOWN_DELAY": "7s"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		cert string
		key  string
		wait time.Duration
	}{
		{"defaults", nil, nil, "", "", 0},
		{"environment", env, nil, "/c.pem", "/k.pem", 7 * time.Second},
		{"flags win", env, []string{"-tls-cert", "/x.pem", "-tls-key", "/y.pem", "-shutdown-delay", "1s"}, "/x.pem", "/y.pem", time.Second},
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
		})
	}
}
