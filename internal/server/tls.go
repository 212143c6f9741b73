package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// maxTLSFile bounds what is read of -tls-cert and -tls-key. A chain that
// clients accept is a few KB; Go's own client refuses a certificate
// message over 256 KiB, so nothing larger could be served anyway.
const maxTLSFile = 1 << 20

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
// The files and their directories follow the rule of a -signing-key outside
// the data directory (checkOutside).
// A certificate outside its validity period is an error: every client
// would refuse it. So is a pair that Go cannot serve (an RSA key under
// 1024 bits, an ECDSA curve TLS does not sign with, a chain too large for
// a handshake message): before it is taken, the pair serves one TLS 1.3 and
// one TLS 1.2 handshake in memory (checkHandshake).
func (c *certificate) reload() error {
	// The ownership rule of the data directory's files (datadir.go), at
	// every read: whoever may write them could serve as this server.
	if err := checkOutside(c.certFile, false); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := checkOutside(c.keyFile, true); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	certPEM, err := readBounded(c.certFile)
	if err != nil {
		return err
	}
	keyPEM, err := readBounded(c.keyFile)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls: %s and %s: %w", c.certFile, c.keyFile, err)
	}
	now := time.Now()
	switch leaf := pair.Leaf; {
	case leaf == nil:
	case now.After(leaf.NotAfter):
		return fmt.Errorf("tls: %s expired on %s", c.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("tls: %s is not valid before %s", c.certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if err := checkHandshake(&pair); err != nil {
		return fmt.Errorf("tls: %s and %s cannot be served: a test handshake failed: %w "+
			"(Go serves RSA keys of 1024 bits or more, ECDSA keys on P-256, P-384 or P-521, and Ed25519 keys, with a chain under 256 KiB)",
			c.certFile, c.keyFile, err)
	}
	c.cur.Store(&pair)
	return nil
}

// readBounded reads a TLS file of at most maxTLSFile bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTLSFile+1))
	if err != nil {
		return nil, fmt.Errorf("tls: %s: %w", path, err)
	}
	if len(b) > maxTLSFile {
		return nil, fmt.Errorf("tls: %s is larger than %d bytes: a certificate chain or key is a few KB; is it the right file?", path, maxTLSFile)
	}
	return b, nil
}

// checkHandshake has pair serve a TLS 1.3 and a TLS 1.2 handshake to a Go
// client, as the listener would (the same minimum version), over a Unix
// socket pair: in memory, with the kernel's buffers, so that a client that
// gives up sends its alert while the server is still writing. The client
// does not check the chain against any roots (the server cannot know its
// clients'), but it parses every certificate, bounds the certificate
// message and verifies the handshake's signature, which is where a pair Go
// cannot serve fails. The error returned names the cause: the client's
// unless it only relays the server's alert.
func checkHandshake(pair *tls.Certificate) error {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		sc, cc, err := socketPair()
		if err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		sc.SetDeadline(deadline)
		cc.SetDeadline(deadline)
		srv := tls.Server(sc, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*pair}})
		cli := tls.Client(cc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12, MaxVersion: version})
		served := make(chan error, 1)
		go func() {
			err := srv.Handshake()
			sc.Close()
			served <- err
		}()
		cerr := cli.Handshake()
		cc.Close()
		serr := <-served
		var remote *net.OpError
		switch {
		case cerr != nil && !(errors.As(cerr, &remote) && remote.Op == "remote error"):
			return cerr // the client found the fault itself (the server saw only the hang-up)
		case serr != nil:
			return serr
		case cerr != nil:
			return cerr
		}
	}
	return nil
}

// socketPair returns the two ends of a connected Unix stream socket pair.
func socketPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: socket pair for the test handshake: %w", err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "tls-check")
		conns[i], err = net.FileConn(f) // a copy of the descriptor
		f.Close()
		if err != nil {
			if i == 1 {
				conns[0].Close()
			} else {
				syscall.Close(fds[1])
			}
			return nil, nil, fmt.Errorf("tls: socket pair for the test handshake: %w", err)
		}
	}
	return conns[0], conns[1], nil
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
