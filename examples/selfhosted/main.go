// Command selfhosted is a tiny self-hosted "product" that gates a feature by
// the plan its license grants, using the client package.
//
// Against the reference server (see the README):
//
//	curl -s localhost:8080/api/v1/licensing/public-keys > /tmp/jwks.json
//	LICENSE_KEY=<a key or an offline token> go run ./examples/selfhosted \
//	    -server http://localhost:8080 -public-keys /tmp/jwks.json -issuer licensing.localhost
//	curl localhost:8091/            # the plan in use
//	curl localhost:8091/export      # only on plans with the "exports" feature
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/licensekit/licensing/client"
)

// product holds the license currently in force.
type product struct {
	license atomic.Pointer[client.License]
}

func (p *product) set(l client.License) {
	p.license.Store(&l)
	log.Printf("license: plan %s (valid %v, from %s)", l.Plan, l.Valid, l.Source)
}

func (p *product) current() client.License {
	if l := p.license.Load(); l != nil {
		return *l
	}
	return client.License{Plan: "community", Source: client.SourceFallback}
}

// handler serves the product: "/" for everyone, "/export" only when the plan
// has the "exports" feature.
func (p *product) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		l := p.current()
		json.NewEncoder(w).Encode(map[string]any{"plan": l.Plan, "valid": l.Valid, "source": l.Source})
	})
	mux.HandleFunc("GET /export", func(w http.ResponseWriter, r *http.Request) {
		l := p.current()
		if on, _ := l.Features["exports"].(bool); !l.Valid || !on {
			http.Error(w, "exports need a plan with the exports feature", http.StatusPaymentRequired)
			return
		}
		w.Write([]byte("id,total\n1,100\n"))
	})
	return mux
}

func main() {
	server := flag.String("server", "http://localhost:8080", "license server")
	keys := flag.String("public-keys", "jwks.json", "the server's JWKS file (embed it in a real product)")
	issuer := flag.String("issuer", "licensing.localhost", "issuer of offline tokens")
	addr := flag.String("addr", "127.0.0.1:8091", "listen address")
	flag.Parse()
	jwks, err := os.ReadFile(*keys)
	if err != nil {
		log.Fatal(err)
	}
	p := &product{}
	c, err := client.New(client.Config{
		ServerURL:    *server,
		LicenseKey:   os.Getenv("LICENSE_KEY"),
		PublicKeys:   jwks,
		Issuer:       *issuer,
		CachePath:    filepath.Join(os.TempDir(), "selfhosted-license.json"),
		InstanceName: "selfhosted example",
		OnChange:     p.set,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go c.Run(ctx)
	srv := &http.Server{Addr: *addr, Handler: p.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	log.Printf("product listening on %s", *addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
