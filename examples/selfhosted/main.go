// Command selfhosted is a tiny self-hosted "product" that gates a feature by
// the plan its license grants, using the client package. It logs with
// log/slog why its license is what it is, and stops on interrupt or SIGTERM.
//
// Against the reference server (see the README):
//
//	go run ./cmd/licensing-server public-keys > /tmp/public-keys.pem   # or curl the JWKS: .../public-keys
//	LICENSE_KEY=<a key or an offline token> go run ./examples/selfhosted \
//	    -server http://localhost:8080 -public-keys /tmp/public-keys.pem -issuer licensing.localhost
//	curl localhost:8091/            # the plan in use, and why
//	curl localhost:8091/export      # only on plans with the "exports" feature
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/licensekit/licensing/client"
)

// product holds the license currently in force.
type product struct {
	log     *slog.Logger
	license atomic.Pointer[client.License]
}

func newProduct(log *slog.Logger) *product { return &product{log: log} }

// set applies l, and says why it is what it is.
func (p *product) set(l client.License) {
	p.license.Store(&l)
	attrs := []any{"plan", l.Plan, "valid", l.Valid, "source", l.Source, "reason", l.Reason}
	if l.ServerMessage != "" {
		attrs = append(attrs, "serverMessage", l.ServerMessage)
	}
	if l.Warning != nil { // usable, not confirmed: the last good answer, and why
		attrs = append(attrs, "warning", l.Warning.Error())
	}
	if l.Valid {
		p.log.Info("license applied", attrs...)
	} else {
		p.log.Warn("license applied", attrs...)
	}
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
		json.NewEncoder(w).Encode(map[string]any{"plan": l.Plan, "valid": l.Valid, "source": l.Source, "reason": l.Reason})
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
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], os.Getenv, logger, nil); err != nil {
		logger.Error("selfhosted: stopped", "err", err)
		os.Exit(1)
	}
}

// run serves the product until an interrupt or SIGTERM; ready, when set,
// is told the address once the product listens.
func run(args []string, getenv func(string) string, logger *slog.Logger, ready func(addr string)) error {
	fs := flag.NewFlagSet("selfhosted", flag.ContinueOnError)
	server := fs.String("server", "http://localhost:8080", "license server")
	keys := fs.String("public-keys", "jwks.json", "the server's public keys: the PEM that licensing-server public-keys prints, or the JWKS (embed them in a real product)")
	issuer := fs.String("issuer", "licensing.localhost", "issuer of offline tokens")
	addr := fs.String("addr", "127.0.0.1:8091", "listen address")
	cache := fs.String("cache", filepath.Join(os.TempDir(), "selfhosted-license.json"), "license cache file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	jwks, err := os.ReadFile(*keys)
	if err != nil {
		return err
	}
	p := newProduct(logger)
	c, err := client.New(client.Config{
		ServerURL:    *server,
		LicenseKey:   getenv("LICENSE_KEY"),
		PublicKeys:   jwks,
		Issuer:       *issuer,
		CachePath:    *cache,
		InstanceName: "selfhosted example",
		OnChange:     p.set,  // the plan to apply, and why
		Logger:       logger, // each failed check, with its reason
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	checking := make(chan struct{})
	go func() {
		defer close(checking)
		c.Run(ctx)
	}()
	srv := &http.Server{Handler: p.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	logger.Info("product listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	err = srv.Serve(ln)
	stop()
	<-checking
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
