package server

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/matryer/is"
)

// fakeListener hands out the connections sent on its channel, then
// net.ErrClosed.
type fakeListener struct{ conns chan net.Conn }

func (l fakeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l fakeListener) Close() error   { return nil }
func (l fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

// fromConn is one end of a pipe that says it comes from remote.
type fromConn struct {
	net.Conn
	remote net.Addr
}

func (c fromConn) RemoteAddr() net.Addr { return c.remote }

// TestConnLimiterCountsAndForgets: the cap is per address (IPv6 per /64),
// a connection over it is closed, and the limiter's memory is one entry per
// address with a connection open: none once every connection is closed,
// however often each is closed.
func TestConnLimiterCountsAndForgets(t *testing.T) {
	is := is.New(t)
	conns := make(chan net.Conn, 16)
	var refused atomic.Uint64
	var warned []netip.Addr
	ln := limitConns(fakeListener{conns}, 2, []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}, &refused,
		func(a netip.Addr, _ int) { warned = append(warned, a) }).(*connLimiter)
	var clients []net.Conn // the far ends
	for _, addr := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "::ffff:10.0.0.2", "10.0.0.2",
		"2001:db8::1", "2001:db8::2:1", "2001:db8::3", "2001:db8:0:1::1", "10.9.1.1", "10.9.1.1", "10.9.1.1"} {
		server, client := net.Pipe()
		clients = append(clients, client)
		conns <- fromConn{server, &net.TCPAddr{IP: net.ParseIP(addr), Port: 4000}}
	}
	close(conns)
	var accepted []net.Conn
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			break
		}
		is.NoErr(err)
		accepted = append(accepted, c)
	}
	// 10.0.0.1: 2 of 3; 10.0.0.2 (also as IPv4-mapped IPv6): 2 of 3;
	// 2001:db8::/64: 2 of 3; 2001:db8:0:1::/64: 1; the trusted 10.9.0.0/16: all 3.
	is.Equal(len(accepted), 10)
	is.Equal(refused.Load(), uint64(3))
	is.Equal(len(warned), 1) // at most one warning a minute
	for _, i := range []int{2, 5, 8} {
		_, err := clients[i].Read(make([]byte, 1))
		is.Equal(err, io.EOF) // the refused ones were closed
	}
	is.Equal(len(ln.open), 4) // the trusted peer is not tracked
	for _, c := range accepted {
		c.Close()
		c.Close() // a second close gives nothing back twice
	}
	is.Equal(len(ln.open), 0)                                                                 // nothing remembered once nothing is open
	is.Equal(limitConns(fakeListener{}, 0, nil, &refused, nil), net.Listener(fakeListener{})) // 0: no cap
}

// TestLimitedConnHalfCloses: a capped TCP connection still half-closes, as
// net/http expects of a *net.TCPConn to end an error answer cleanly.
func TestLimitedConnHalfCloses(t *testing.T) {
	is := is.New(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	var refused atomic.Uint64
	ln := limitConns(tcp, 1, nil, &refused, nil)
	defer ln.Close()
	client, err := net.Dial("tcp", tcp.Addr().String())
	is.NoErr(err)
	defer client.Close()
	c, err := ln.Accept()
	is.NoErr(err)
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	is.True(ok) // the wrapper keeps CloseWrite
	io.WriteString(c, "answer")
	is.NoErr(cw.CloseWrite())
	got, err := io.ReadAll(client) // EOF after the answer: half-closed, not reset
	is.NoErr(err)
	is.Equal(string(got), "answer")
	_, err = io.WriteString(client, "more") // the other half is still open
	is.NoErr(err)
	b := make([]byte, 4)
	_, err = io.ReadFull(c, b)
	is.NoErr(err)
	is.Equal(string(b), "more")
}

// TestConnLimiterExemptsAnIPv6Proxy: a trusted proxy named by its IPv6
// address (-trusted-proxies 2001:db8::5, or ::1) is not capped, though
// other clients' IPv6 addresses are counted by /64.
func TestConnLimiterExemptsAnIPv6Proxy(t *testing.T) {
	is := is.New(t)
	conns := make(chan net.Conn, 8)
	var refused atomic.Uint64
	ln := limitConns(fakeListener{conns}, 1, []netip.Prefix{netip.MustParsePrefix("2001:db8::5/128"), netip.MustParsePrefix("::1/128")},
		&refused, func(netip.Addr, int) {})
	for _, addr := range []string{"2001:db8::5", "2001:db8::5", "2001:db8::5", "::1", "::1"} {
		server, client := net.Pipe()
		defer client.Close()
		conns <- fromConn{server, &net.TCPAddr{IP: net.ParseIP(addr), Port: 4000}}
	}
	close(conns)
	accepted := 0
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			break
		}
		is.NoErr(err)
		defer c.Close()
		accepted++
	}
	is.Equal(accepted, 5) // every connection of the proxies
	is.Equal(refused.Load(), uint64(0))
}
