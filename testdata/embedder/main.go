// Command embedder is an application outside the licensing module that
// embeds it as any other would, through the replace directive of its own
// go.mod. The module's embedding_test.go builds and runs it
// (internal/harness, EmbedderCmd).
//
//	embedder <dir>
//
// It keeps its pepper (licensing.LoadOrCreatePepper), signing keys and file
// store in dir, serves the licensing routes with a zero HandlerConfig on a
// free loopback port, logs "msg=listening addr=<addr>" to stderr, and
// serves until SIGTERM or SIGINT. Its one owner token is "owner-secret".
// When the store holds keys of another pepper it logs "pepper mismatch"
// and exits with status 3; any other failure exits with status 1.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
)

type org struct{}

func (org) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	if id != "org-1" {
		return licensing.Organization{}, licensing.ErrOrgNotFound
	}
	return licensing.Organization{ID: "org-1", Name: "Outside SRL", OwnerID: "owner", Plan: "business", Active: true}, nil
}

func authenticate(r *http.Request) (licensing.Actor, error) {
	token, err := licensing.BearerToken(r)
	if err != nil {
		return licensing.Actor{}, err
	}
	if token != "owner-secret" { // a real application compares digests in constant time
		return licensing.Actor{}, licensing.ErrUnauthorized
	}
	return licensing.ResolveActor(r, "owner", []string{"org-1"})
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: embedder <dir>")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		if errors.Is(err, licensing.ErrPepperMismatch) {
			slog.Error("pepper mismatch", "err", err)
			os.Exit(3)
		}
		slog.Error("stopped", "err", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	pepper, err := licensing.LoadOrCreatePepper(filepath.Join(dir, "pepper"))
	if err != nil {
		return err
	}
	signing, err := licensing.LoadOrCreateSigningKeys(dir)
	if err != nil {
		return err
	}
	st, err := filestore.Open(filepath.Join(dir, "store"), filestore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := licensing.New(licensing.Config{Store: st, Organizations: org{}, Pepper: pepper, Signing: signing,
		Policy: licensing.Policy{Issuer: "outside.example.com"}})
	if err != nil {
		return err
	}
	defer svc.Close(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: licensing.NewHandler(svc, licensing.AuthenticatorFunc(authenticate), licensing.HandlerConfig{}),
		ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	slog.Info("listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
