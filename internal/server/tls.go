package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// certificate serves the TLS certificate of -tls-cert and -tls-key and
// swaps it on reload: new handshakes see the new certificate, open
// connections keep theirs.
type certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// newCertificate loads the pair; both files or neither must be given (nil, nil: no TLS).
func newCertificate(certFile, keyFile string) (*certificate, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again; on an error the current certificate stays.
// A certificate outside its validity period is an error: every client
// would refuse it.
func (c *certificate) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	now := time.Now()
	switch leaf := pair.Leaf; {
	case leaf == nil:
	case now.After(leaf.NotAfter):
		return fmt.Errorf("tls: %s expired on %s", c.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("tls: %s is not valid before %s", c.certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	c.cur.Store(&pair)
	return nil
}

// config is the server's TLS configuration, its certificate read at each handshake.
func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}

// reloadTLS is the TLS part of SIGHUP.
func (m *Main) reloadTLS() {
	if m.cert == nil {
		return
	}
	if err := m.cert.reload(); err != nil {
		m.logger.Error("reload: keeping the previous TLS certificate", "err", err)
		return
	}
	m.logger.Info("TLS certificate reloaded", "cert", m.TLSCert)
}
