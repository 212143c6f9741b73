package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/client"
)

type orgs struct {
	mu  sync.Mutex
	org licensing.Organization
}

func (o *orgs) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.org, nil
}

func TestFeatureGatedByPlan(t *testing.T) {
	is := is.New(t)
	signing, err := licensing.GenerateSigningKeys(0)
	is.NoErr(err)
	o := &orgs{org: licensing.Organization{ID: "org-1", Name: "Acme", OwnerID: "u", Plan: "starter", Active: true,
		Features: map[string]any{"selfHostingLicense": true, "exports": false}}}
	svc, err := licensing.New(licensing.Config{Store: licensing.NewMemoryStore(), Organizations: o,
		Pepper: bytes.Repeat([]byte{9}, 32), Signing: signing, Policy: licensing.Policy{Issuer: "licensing.test"}})
	is.NoErr(err)
	defer svc.Close(context.Background())
	owner := licensing.Actor{UserID: "u", OrganizationID: "org-1"}
	licenseServer := httptest.NewServer(licensing.NewHandler(svc, licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
		return owner, nil
	}), licensing.HandlerConfig{}))
	defer licenseServer.Close()
	created, err := svc.CreateKey(context.Background(), owner, licensing.CreateKeyInput{})
	is.NoErr(err)

	var logs bytes.Buffer
	p := newProduct(slog.New(slog.NewTextHandler(&logs, nil)))
	c, err := client.New(client.Config{ServerURL: licenseServer.URL, LicenseKey: created.LicenseKey,
		PublicKeys: signing.JWKS(), OnChange: p.set, Logger: slog.New(slog.DiscardHandler)})
	is.NoErr(err)
	app := httptest.NewServer(p.handler())
	defer app.Close()
	get := func() int {
		res, err := http.Get(app.URL + "/export")
		is.NoErr(err)
		res.Body.Close()
		return res.StatusCode
	}

	lic, err := c.Check(context.Background())
	is.NoErr(err)
	p.set(lic)
	is.Equal(get(), http.StatusPaymentRequired) // starter: no exports

	o.mu.Lock()
	o.org.Plan, o.org.Features = "business", map[string]any{"selfHostingLicense": true, "exports": true}
	o.mu.Unlock()
	lic, err = c.Check(context.Background())
	is.NoErr(err)
	p.set(lic)
	is.Equal(get(), http.StatusOK) // the upgrade shows on the next check
	is.True(strings.Contains(logs.String(), "plan=business valid=true source=online reason=valid"))

	is.NoErr(svc.RevokeKey(context.Background(), owner, created.Key.ID))
	lic, err = c.Check(context.Background())
	is.True(errors.Is(err, client.ErrInvalidKey))
	p.set(lic)
	is.Equal(get(), http.StatusPaymentRequired) // revoked: back to the fallback
	is.True(strings.Contains(logs.String(), `level=WARN msg="license applied" plan=community valid=false source=fallback reason=revoked_or_unknown serverMessage="Invalid or revoked license key"`))
}
