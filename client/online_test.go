package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/client"
)

// What held: a proxy that re-stamps Date (an hour off) does not break
// verification nor skew the measured clock (Licensing-Date is signed); a
// proxy that drops Licensing-Date and keeps the server's Date still
// verifies (an old server's answer); one that forges Licensing-Date is
// untrusted.
func TestLicensingDateThroughProxies(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(h http.Header)
		trusted bool
	}{
		{"Date re-stamped", func(h http.Header) { h.Set("Date", "Mon, 01 Jan 2001 00:00:00 GMT") }, true},
		{"Licensing-Date dropped, Date kept", func(h http.Header) {
			h.Set("Date", h.Get("Licensing-Date"))
			h.Del("Licensing-Date")
		}, true},
		{"Licensing-Date forged", func(h http.Header) { h.Set("Licensing-Date", "Fri, 20 Feb 2099 10:30:00 GMT") }, false},
		{"Licensing-Date forged, Date kept", func(h http.Header) {
			h.Set("Date", h.Get("Licensing-Date"))
			h.Set("Licensing-Date", "Fri, 20 Feb 2099 10:30:00 GMT")
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			_, key := w.key(t)
			u, _ := url.Parse(w.srv.URL)
			p := httputil.NewSingleHostReverseProxy(u)
			p.ModifyResponse = func(r *http.Response) error { tc.modify(r.Header); return nil }
			proxy := httptest.NewServer(p)
			defer proxy.Close()
			c := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = proxy.URL })
			lic, err := c.Check(context.Background())
			t.Logf("valid=%v reason=%v skew=%v err=%v", lic.Valid, lic.Reason, lic.ClockSkew, err)
			is.Equal(err == nil, tc.trusted)
			if tc.trusted {
				is.Equal(lic.ClockSkew, time.Duration(0))
			}
		})
	}
}
