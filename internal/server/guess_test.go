package server_test

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/matryer/is"
)

// TestBinaryConcurrentGuesses: the real binary, one client address, 300
// wrong bearer tokens sent at once over many connections: exactly the burst
// of the default -owner-rate-limit (120 a minute: 30) is tried, the rest
// get 429.
func TestBinaryConcurrentGuesses(t *testing.T) {
	is := is.New(t)
	p, _ := contractServer(t)
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
	close(start)
	wg.Wait()
	t.Logf("401 (token tried) %d, 429 %d", tried.Load(), limited.Load())
	is.True(tried.Load() <= 30) // the burst of -owner-rate-limit 120
}
