package server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// rawConn is one keep-alive HTTP/1.1 connection, for tests that count them.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, br: bufio.NewReader(c)}
}

// get sends GET path on the connection and returns the answer's status and
// body, or an error when the connection was closed without an answer.
func (r *rawConn) get(path string) (int, string, error) {
	r.c.SetDeadline(time.Now().Add(10 * time.Second)) // a hung server fails the test instead of hanging it
	if _, err := io.WriteString(r.c, "GET "+path+" HTTP/1.1\r\nHost: licensing.test\r\n\r\n"); err != nil {
		return 0, "", err
	}
	res, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// TestConnectionsPerAddressAreCapped: one client address holds at most
// -max-conns-per-addr open connections; one more is closed before it is
// answered (and counted in /metrics), and a place freed by a close is
// taken again. The cap is on the TCP peer: a peer in -trusted-proxies
// carries many clients and is not capped.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	p := start(t, nil, "-data", filepath.Join(dir, "data"), "-store", "memory", "-max-conns-per-addr", "3")
	held := make([]*rawConn, 3)
	for i := range held {
		held[i] = dialRaw(t, p.url)
		status, _, err := held[i].get("/healthz")
		is.NoErr(err)
		is.Equal(status, 200) // under the cap: answered, and kept open
	}
	for range 2 {
		_, _, err := dialRaw(t, p.url).get("/healthz")
		is.True(err != nil) // over the cap: closed without an answer
	}
	status, body, err := held[0].get("/metrics")
	is.NoErr(err)
	is.Equal(status, 200)
	is.True(strings.Contains(body, "\nlicensing_connections_refused_total 2\n")) // every refusal counted
	is.True(strings.Contains(p.logs.String(), "max-conns-per-addr"))             // and the operator told

	held[2].c.Close() // frees a place, once the server has seen the close
	for try := 0; ; try++ {
		status, _, err := dialRaw(t, p.url).get("/healthz")
		if err == nil {
			is.Equal(status, 200) // the freed place is taken again
			break
		}
		if try == 1000 {
			t.Fatalf("the place of a closed connection was never freed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	proxied := start(t, nil, "-data", filepath.Join(dir, "proxied"), "-store", "memory", "-max-conns-per-addr", "1",
		"-trusted-proxies", "127.0.0.1")
	for range 3 {
		status, _, err := dialRaw(t, proxied.url).get("/healthz")
		is.NoErr(err) // a trusted proxy is not capped
		is.Equal(status, 200)
	}
	_, refused, err := dialRaw(t, proxied.url).get("/metrics")
	is.NoErr(err)
	is.True(strings.Contains(refused, "\nlicensing_connections_refused_total 0\n"))
}
