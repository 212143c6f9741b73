package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/harness"
	"github.com/licensekit/licensing/internal/server"
	"github.com/matryer/is"
)

// selfSigned returns a PEM certificate for 127.0.0.1 with serial, its PEM
// key and the parsed certificate.
func selfSigned(t *testing.T, serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	return selfSignedFor(t, serial, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// selfSignedFor is selfSigned valid from notBefore to notAfter.
func selfSignedFor(t *testing.T, serial int64, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "licensing test"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}

func writeFiles(t *testing.T, files map[string][]byte) {
	t.Helper()
	for path, b := range files {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// waitLog waits until the server's log holds want n times.
func waitLog(t *testing.T, p *inproc, want string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Count(p.logs.String(), want) >= n {
			return
		}
	}
	t.Fatalf("log never said %q %d times:\n%s", want, n, p.logs.String())
}

// TestTLSReload serves HTTPS with a certificate made here, reloads a second
// one on SIGHUP: a new connection sees the new certificate while an open
// keep-alive connection goes on working; a bad file keeps the current one.
func TestTLSReload(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	certFile, keyFile := filepath.Join(t.TempDir(), "cert.pem"), filepath.Join(t.TempDir(), "key.pem")
	certA, keyA, a := selfSigned(t, 1)
	certB, keyB, b := selfSigned(t, 2)
	writeFiles(t, map[string][]byte{certFile: certA, keyFile: keyA})
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", RateBurst: 1,
		TokenLifetime: time.Hour, TLSCert: certFile, TLSKey: keyFile})

	roots := x509.NewCertPool()
	roots.AddCert(a)
	roots.AddCert(b)
	newClient := func() *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots}, MaxConnsPerHost: 1}}
	}
	// get answers the serial of the server's certificate and whether the
	// connection was reused.
	get := func(t *testing.T, c *http.Client) (serial int64, reused bool) {
		t.Helper()
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }})
		req, _ := http.NewRequestWithContext(ctx, "GET", p.url+"/healthz", nil)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body) // so that the connection is kept
		res.Body.Close()
		if res.StatusCode != 200 || res.TLS == nil {
			t.Fatalf("status %d, TLS %v", res.StatusCode, res.TLS != nil)
		}
		return res.TLS.PeerCertificates[0].SerialNumber.Int64(), reused
	}

	old := newClient()
	serial, _ := get(t, old)
	is.Equal(serial, int64(1)) // the first certificate

	plain, err := http.Get(strings.Replace(p.url, "https://", "http://", 1) + "/healthz")
	if err == nil {
		plain.Body.Close()
		is.True(plain.StatusCode != 200) // no plain HTTP on the TLS listener
	}

	writeFiles(t, map[string][]byte{certFile: certB, keyFile: keyB})
	p.reload <- syscall.SIGHUP
	waitLog(t, p, "TLS certificate reloaded", 1)

	serial, reused := get(t, old)
	is.True(reused)            // the open connection survived the reload
	is.Equal(serial, int64(1)) // and keeps the certificate it was made with
	serial, reused = get(t, newClient())
	is.True(!reused)
	is.Equal(serial, int64(2)) // a new connection sees the new certificate

	writeFiles(t, map[string][]byte{certFile: []byte("not a certificate")})
	p.reload <- syscall.SIGHUP
	waitLog(t, p, "keeping the previous TLS certificate", 1)
	serial, _ = get(t, newClient())
	is.Equal(serial, int64(2)) // a bad file keeps the current certificate

	certC, keyC, _ := selfSignedFor(t, 3, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	writeFiles(t, map[string][]byte{certFile: certC, keyFile: keyC})
	p.reload <- syscall.SIGHUP
	waitLog(t, p, "keeping the previous TLS certificate", 2)
	is.True(strings.Contains(p.logs.String(), "expired on")) // says why
	serial, _ = get(t, newClient())
	is.Equal(serial, int64(2)) // an expired certificate is not taken either

	certD, keyD, _ := selfSigned(t, 4)
	writeFiles(t, map[string][]byte{certFile: certD, keyFile: keyD})
	is.NoErr(os.Chmod(keyFile, 0o644))
	p.reload <- syscall.SIGHUP
	waitLog(t, p, "keeping the previous TLS certificate", 3)
	is.True(strings.Contains(p.logs.String(), keyFile+" is readable by others")) // the ownership rule of a start (datadir.go)
	serial, _ = get(t, newClient())
	is.Equal(serial, int64(2)) // a key others may read is not taken
}

// TestTLSCertificateOutOfDateStopsStart: a certificate that has expired, or
// is not valid yet, stops the start with one line saying so: every client
// would refuse it.
func TestTLSCertificateOutOfDateStopsStart(t *testing.T) {
	for _, tc := range []struct {
		name                string
		notBefore, notAfter time.Time
		want                string
	}{
		{"expired", time.Now().Add(-48 * time.Hour), time.Now().Add(-time.Hour), "expired on"},
		{"not yet valid", time.Now().Add(24 * time.Hour), time.Now().Add(48 * time.Hour), "is not valid before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			certPEM, keyPEM, _ := selfSignedFor(t, 1, tc.notBefore, tc.notAfter)
			writeFiles(t, map[string][]byte{certFile: certPEM, keyFile: keyPEM})
			out, err := exec.Command(serverBin, "-addr", "127.0.0.1:0", "-data", filepath.Join(dir, "d"), "-tls-cert", certFile, "-tls-key", keyFile).CombinedOutput()
			is.True(err != nil) // refused
			is.True(strings.Contains(string(out), tc.want))
		})
	}
}

func TestTLSFlagsTogether(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	m := &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", RateBurst: 1, TokenLifetime: time.Hour,
		TLSCert: filepath.Join(t.TempDir(), "cert.pem"), Addr: "127.0.0.1:0", Stderr: &harness.Buffer{},
		Getenv: func(string) string { return "" }}
	err := m.Run(context.Background(), nil)
	is.True(err != nil && strings.Contains(err.Error(), "-tls-cert and -tls-key")) // one without the other is refused
}

// certWithKey returns a PEM certificate for 127.0.0.1 of key (self-signed),
// followed by extra copies of itself in the chain, and the PEM key.
func certWithKey(t *testing.T, key crypto.Signer, extra int) (certPEM, keyPEM []byte) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(9),
		Subject:      pkix.Name{CommonName: "licensing test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	one := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return bytes.Repeat(one, 1+extra), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// badPair is a TLS pair that parses but that Go cannot serve, with a word
// of why that the refusal must give.
type badPair struct {
	name      string
	cert, key []byte
	why       string
}

// unservable are badPairs.
func unservable(t *testing.T) []badPair {
	t.Helper()
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var out []badPair
	add := func(name string, cert, key []byte, why string) { out = append(out, badPair{name, cert, key, why}) }
	c, k := certWithKey(t, p224, 0)
	add("ECDSA P-224", c, k, "unsupported")
	c, k = certWithKey(t, p256, 1000) // about 550 KB of PEM, 400 KB of DER: over the 256 KiB a handshake message may hold
	add("chain of 400 KB", c, k, "exceeds maximum")
	c, k = certWithKey(t, p256, 0)
	add("11 MB file", append(c, bytes.Repeat([]byte("\n"), 11<<20)...), k, "larger than")
	return out
}

// rsa512 returns a certificate and key of 512 bits, which crypto/rsa makes
// only with GODEBUG=rsa1024min=0 (set for this call only, so that neither
// this process's server nor a child inherits it).
func rsa512(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	old, had := os.LookupEnv("GODEBUG")
	os.Setenv("GODEBUG", "rsa1024min=0")
	key, err := rsa.GenerateKey(rand.Reader, 512)
	var c, k []byte
	if err == nil {
		c, k = certWithKey(t, key, 0)
	}
	if had {
		os.Setenv("GODEBUG", old)
	} else {
		os.Unsetenv("GODEBUG")
	}
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// startOrExit runs the server binary with args until it listens (then
// stops it) or exits, and returns its output and whether it exited.
func startOrExit(t *testing.T, args ...string) (out string, exited bool) {
	t.Helper()
	p, err := harness.Start(serverCmd(nil, args...), harness.Config{})
	switch {
	case errors.Is(err, harness.ErrExited):
		return p.Log.String(), p.Wait() != nil
	case err != nil:
		t.Fatal(err)
	}
	harness.StopTB(t, p)
	return p.Log.String(), false
}

// TestTLSCertificateGoCannotServeStopsStart: a certificate that parses but
// that no handshake can be made with (a 512-bit RSA key, an ECDSA P-224
// key, a chain too large for a handshake message, a file of 11 MB) stops
// the start with one line naming the files and why, instead of a server
// whose every handshake fails.
func TestTLSCertificateGoCannotServeStopsStart(t *testing.T) {
	cases := unservable(t)
	c, k := rsa512(t)
	cases = append(cases, badPair{"RSA 512 bits", c, k, "too small"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			writeFiles(t, map[string][]byte{certFile: tc.cert, keyFile: tc.key})
			out, exited := startOrExit(t, "-data", filepath.Join(dir, "d"), "-store", "memory", "-tls-cert", certFile, "-tls-key", keyFile)
			is.True(exited)                          // refused
			is.True(strings.Contains(out, certFile)) // naming the file
			is.True(strings.Contains(out, tc.why))   // and why
			is.True(len(out) < 4096)                 // in a line, not the file
			_, err := os.Stat(filepath.Join(dir, "d"))
			is.True(errors.Is(err, fs.ErrNotExist)) // before the data directory was touched
		})
	}
}

// TestTLSReloadKeepsCertificateGoCannotServe: on SIGHUP, a pair that parses
// but cannot be served is not taken: the log says why and new connections
// still get the previous certificate.
func TestTLSReloadKeepsCertificateGoCannotServe(t *testing.T) {
	is := is.New(t)
	cfgPath, data := configured(t)
	certFile, keyFile := filepath.Join(t.TempDir(), "cert.pem"), filepath.Join(t.TempDir(), "key.pem")
	certA, keyA, a := selfSigned(t, 1)
	writeFiles(t, map[string][]byte{certFile: certA, keyFile: keyA})
	p := runMain(t, &server.Main{ConfigPath: cfgPath, DataDir: data, StoreKind: "memory", RateBurst: 1,
		TokenLifetime: time.Hour, TLSCert: certFile, TLSKey: keyFile})
	roots := x509.NewCertPool()
	roots.AddCert(a)
	for i, tc := range unservable(t) {
		writeFiles(t, map[string][]byte{certFile: tc.cert, keyFile: tc.key})
		p.reload <- syscall.SIGHUP
		waitLog(t, p, "keeping the previous TLS certificate", i+1)
		if !strings.Contains(p.logs.String(), tc.why) {
			t.Fatalf("%s: the log does not say %q:\n%s", tc.name, tc.why, p.logs.String())
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		res, err := c.Get(p.url + "/healthz")
		is.NoErr(err) // still served, with the previous certificate
		res.Body.Close()
		is.Equal(res.TLS.PeerCertificates[0].SerialNumber.Int64(), int64(1))
	}
	is.True(!strings.Contains(p.logs.String(), "TLS certificate reloaded"))
}
