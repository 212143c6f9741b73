// Command embed shows licensing inside an existing net/http application:
// the application keeps its own users, sessions and organizations, and
// mounts the licensing handler next to its own routes. Its licensing state
// (pepper, signing keys, the file store) lives in -data, so issued keys
// keep validating across restarts.
//
//	go run ./examples/embed -data ./embed-data
//	curl -X POST localhost:8090/api/v1/licensing/keys -H 'Authorization: Bearer alice-token'
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
)

// app is the existing application: users with API tokens and organizations.
type app struct {
	mu    sync.RWMutex
	users map[string]string // API token -> user id (a real app: sessions, OAuth...)
	orgs  map[string]licensing.Organization
}

// Organization lets licensing read the app's organizations.
func (a *app) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if o, ok := a.orgs[id]; ok {
		return o, nil
	}
	return licensing.Organization{}, licensing.ErrOrgNotFound
}

// Authenticate maps the app's bearer tokens to licensing actors and honours
// X-Organization.
func (a *app) Authenticate(r *http.Request) (licensing.Actor, error) {
	token, err := licensing.BearerToken(r)
	if err != nil {
		return licensing.Actor{}, err
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	user, ok := a.users[token] // a real app compares digests in constant time
	if !ok {
		return licensing.Actor{}, licensing.ErrUnauthorized
	}
	var owned []string
	for id, o := range a.orgs {
		if o.OwnerID == user {
			owned = append(owned, id)
		}
	}
	sort.Strings(owned) // the default: the first in id order
	return licensing.ResolveActor(r, user, owned)
}

// newHandler builds the application's mux with licensing mounted in it,
// its state kept in dir, and a function that stops the licensing service
// and closes its store.
func newHandler(a *app, dir string) (http.Handler, func(context.Context) error, error) {
	pepper, err := licensing.LoadOrCreatePepper(filepath.Join(dir, "pepper")) // the same at every start
	if err != nil {
		return nil, nil, err
	}
	signing, err := licensing.LoadOrCreateSigningKeys(dir)
	if err != nil {
		return nil, nil, err
	}
	st, err := filestore.Open(filepath.Join(dir, "store"), filestore.Options{})
	if err != nil {
		return nil, nil, err
	}
	svc, err := licensing.New(licensing.Config{
		Store:         st,
		Organizations: a,
		Pepper:        pepper,
		Signing:       signing,
		Policy: licensing.Policy{
			RequiredFeature: "selfHostingLicense",
			BillingURL:      "https://app.example.com/settings/billing",
			Issuer:          "licensing.example.com",
		},
	})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("the existing application\n"))
	})
	mux.Handle("/api/v1/licensing/", licensing.NewHandler(svc, a, licensing.HandlerConfig{})) // rate limited by default
	stop := func(ctx context.Context) error {
		return errors.Join(svc.Close(ctx), st.Close())
	}
	return mux, stop, nil
}

func main() {
	if err := run(); err != nil {
		slog.Error("embed: stopped", "err", err)
		os.Exit(1)
	}
}

func run() error {
	a := &app{
		users: map[string]string{"alice-token": "alice"},
		orgs: map[string]licensing.Organization{"acme": {ID: "acme", Name: "Acme SRL", OwnerID: "alice",
			Plan: "business", Active: true, Features: map[string]any{"selfHostingLicense": true, "maxCompanies": 10}}},
	}
	dir := flag.String("data", "./embed-data", "directory of the licensing state: pepper, signing keys, store")
	flag.Parse()
	h, closeService, err := newHandler(a, *dir)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: "127.0.0.1:8090", Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	slog.Info("listening", "addr", srv.Addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return closeService(context.Background())
}
