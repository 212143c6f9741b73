package client_test

// Adversarial review (review2) of the client package.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/client"
)

// Promise (client doc, Config.InstanceURL / Metrics, and the HTTP contract
// "instanceUrl: an absolute http or https URL"): a product that configures
// an ordinary value must get its license. The client sends InstanceURL and
// Metrics unchecked; the server refuses the whole validation with a signed
// 400, which the client reports as ErrRejected, and after GracePeriod the
// paid product drops to FallbackPlan. One odd metric or an intranet URL
// costs the customer the license; nothing at New says so.
// FAILS on the reviewed commit.
func TestReviewOrdinaryInstanceInputKeepsLicense(t *testing.T) {
	many := map[string]float64{}
	for i := range 33 {
		many[fmt.Sprintf("m%02d", i)] = 1
	}
	tests := []struct {
		name string
		mod  func(*client.Config)
	}{
		{"docker service URL", func(c *client.Config) { c.InstanceURL = "http://storno-app:8000" }},
		{"intranet URL", func(c *client.Config) { c.InstanceURL = "http://facturi/" }},
		{"33 metrics", func(c *client.Config) { c.Metrics = func() map[string]float64 { return many } }},
		{"unknown metric as -1", func(c *client.Config) {
			c.Metrics = func() map[string]float64 { return map[string]float64{"userCount": 3, "diskFree": -1} }
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			_, key := w.key(t)
			lic, err := w.client(t, key, "", tc.mod).Check(context.Background())
			t.Logf("reason=%s err=%v", lic.Reason, err)
			is.NoErr(err)
			is.True(lic.Valid)
		})
	}
}

// Hostile servers the client must not trust or hang on. These held.
func TestReviewHostileServer(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	tests := []struct {
		name string
		h    http.HandlerFunc
		want error
	}{
		{"giant body", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Licensing-Signature", `kid="a", alg="ed25519", sig="AAAA"`)
			rw.Write([]byte(big))
		}, client.ErrUnreachable},
		{"unsigned 200", func(rw http.ResponseWriter, r *http.Request) {
			rw.Write([]byte(`{"valid":true,"plan":"enterprise","features":{}}`))
		}, client.ErrUntrusted},
		{"unknown kid", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Licensing-Signature", `kid="evil", alg="ed25519", sig="`+strings.Repeat("A", 86)+`=="`)
			rw.Write([]byte(`{"valid":true,"plan":"enterprise","features":{}}`))
		}, client.ErrUntrusted},
		{"slow body", func(rw http.ResponseWriter, r *http.Request) {
			rw.WriteHeader(200)
			rw.(http.Flusher).Flush()
			<-r.Context().Done()
		}, client.ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			w := newWorld(t)
			_, key := w.key(t)
			hostile := httptest.NewServer(tc.h)
			defer hostile.Close()
			c := w.client(t, key, "", func(cfg *client.Config) {
				cfg.ServerURL = hostile.URL
				cfg.HTTPClient = &http.Client{Timeout: time.Second}
			})
			lic, err := c.Check(context.Background())
			is.True(errors.Is(err, tc.want))
			is.True(!lic.Valid)
			is.Equal(lic.Source, client.SourceFallback)
		})
	}
}

// Promise (client doc): signed, nonce-bound answers are accepted whatever
// the clocks say. The signed string covers the Date header's text, and
// standard reverse proxies replace it: nginx never passes the upstream's
// Date (proxy_hide_header's default list) and sends its own cached time.
// When the second ticks between the server's Date and the proxy's, the
// client refuses a genuine answer as untrusted (review/nginxdate measured
// 5 of 60 near-boundary checks through a default nginx 1.22, 0 of 60
// direct). This proxy stamps its own Date one second on, as nginx does on
// a tick (or always, with timer_resolution or a CDN edge far away).
// FAILS on the reviewed commit.
func TestReviewProxyRestampedDate(t *testing.T) {
	is := is.New(t)
	w := newWorld(t)
	_, key := w.key(t)
	upstream := w.srv.URL
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, upstream+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			rw.WriteHeader(502)
			return
		}
		defer res.Body.Close()
		for k, v := range res.Header {
			rw.Header()[k] = v
		}
		d, _ := http.ParseTime(res.Header.Get("Date"))
		rw.Header().Set("Date", d.Add(time.Second).UTC().Format(http.TimeFormat)) // the proxy's own clock, one tick later
		rw.WriteHeader(res.StatusCode)
		io.Copy(rw, res.Body)
	}))
	defer proxy.Close()
	c := w.client(t, key, "", func(cfg *client.Config) { cfg.ServerURL = proxy.URL })
	lic, err := c.Check(context.Background())
	t.Logf("reason=%s err=%v", lic.Reason, err)
	is.NoErr(err) // a genuine answer, only relayed
	is.True(lic.Valid)
}
