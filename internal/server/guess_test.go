package server_test

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestBinaryConcurrentGuesses: the real binary, one client address, 300
// wrong bearer tokens sent at once over many connections: exactly the burst
// of the default -owner-rate-limit (120 a minute: 30) is tried, the rest
// get 429.
func TestBinaryConcurrentGuesses(t *testing.T) {
	is := is.New(t)
	p, _ := contractServer(t, "-max-conns-per-addr", "0") // 300 connections from one address: the token limiter, not the connection cap, is under test
	tr := &http.Transport{MaxIdleConnsPerHost: 300, MaxConnsPerHost: 300}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var tried, limited atomic.Int32
	start := make(chan struct{})
	for i := range 300 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", p.url+"/api/v1/licensing/keys", nil)
			req.Header.Set("Authorization", "Bearer guess-"+strconv.Itoa(i))
			<-start
			res, err := client.Do(req)
			if err != nil {
				return
			}
			res.Body.Close()
			switch res.StatusCode {
			case 401:
				tried.Add(1)
			case 429:
				limited.Add(1)
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	refilled := int32(math.Ceil(time.Since(began).Seconds() * 2)) // 120 a minute: 2 tokens a second while the wave ran
	t.Logf("401 (token tried) %d, 429 %d, in %v", tried.Load(), limited.Load(), time.Since(began))
	is.True(tried.Load() <= 30+refilled) // the burst of -owner-rate-limit 120, and what refilled meanwhile
	is.True(limited.Load() > 0)
}
