package licensing_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/docsnippet"
)

// staticOrgs is the embedding application's view of its organizations.
type staticOrgs map[string]licensing.Organization

func (s staticOrgs) Organization(ctx context.Context, id string) (licensing.Organization, error) {
	if o, ok := s[id]; ok {
		return o, nil
	}
	return licensing.Organization{}, licensing.ErrOrgNotFound
}

// Embed the service in a Go backend: create a key for an organization's
// owner, then validate it as a self-hosted instance would, over HTTP.
func Example() {
	ctx := context.Background()
	svc, err := licensing.New(licensing.Config{
		Store: licensing.NewMemoryStore(),
		Organizations: staticOrgs{"org-1": {ID: "org-1", Name: "Acme SRL", OwnerID: "user-1", Plan: "business",
			Active: true, Features: map[string]any{"selfHostingLicense": true, "maxCompanies": 10}}},
		Pepper: bytes.Repeat([]byte{0x42}, 32), // in production: 32 secret random bytes
		Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.example.com"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close(ctx)

	owner := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	created, err := svc.CreateKey(ctx, owner, licensing.CreateKeyInput{InstanceName: "Production"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("key length:", len(created.LicenseKey))

	auth := licensing.AuthenticatorFunc(func(r *http.Request) (licensing.Actor, error) {
		return owner, nil // a real application checks the bearer token here
	})
	srv := httptest.NewServer(licensing.NewHandler(svc, auth, licensing.HandlerConfig{}))
	defer srv.Close()
	res, err := http.Post(srv.URL+"/api/v1/licensing/validate", "application/json",
		strings.NewReader(`{"licenseKey": "`+created.LicenseKey+`", "metrics": {"companyCount": 12}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	var body bytes.Buffer
	body.ReadFrom(res.Body)
	fmt.Println(res.Status)
	fmt.Print(body.String())
	// Output:
	// key length: 64
	// 200 OK
	// {"valid":true,"plan":"business","features":{"maxCompanies":10,"selfHostingLicense":true},"organizationId":"org-1","organizationName":"Acme SRL","violations":["companyCount is 12, above the business plan's limit of 10 (maxCompanies)."]}
}

// Keys are checked locally before any store access.
func ExampleParseKey() {
	_, err := licensing.ParseKey("0123456789abcdef0123456789abcdef0123456789abcdef0123456700000000")
	fmt.Println(err)
	// Output: licensing: license key checksum does not match (mistyped key?)
}

// An application that keeps its organizations in its own database adapts a
// lookup function with OrganizationsFunc.
func ExampleOrganizationsFunc() {
	orgs := licensing.OrganizationsFunc(func(ctx context.Context, id string) (licensing.Organization, error) {
		if id != "acme" {
			return licensing.Organization{}, licensing.ErrOrgNotFound
		}
		return licensing.Organization{ID: "acme", Name: "Acme SRL", OwnerID: "alice", Plan: "business", Active: true}, nil
	})
	org, err := orgs.Organization(context.Background(), "acme")
	fmt.Println(org.Name, err)
	_, err = orgs.Organization(context.Background(), "globex")
	fmt.Println(errors.Is(err, licensing.ErrOrgNotFound))
	// Output:
	// Acme SRL <nil>
	// true
}

// embedding is the package doc's embedding code, compiled here:
// TestPackageDocCompiles holds the doc to it, line for line.
func embedding(mux *http.ServeMux, myOrgs licensing.Organizations, pepper []byte, myAuth licensing.Authenticator) error {
	svc, err := licensing.New(licensing.Config{
		Store:         licensing.NewMemoryStore(),
		Organizations: myOrgs, // implements licensing.Organizations
		Pepper:        pepper, // from licensing.LoadOrCreatePepper: the same at every start
		Policy: licensing.Policy{
			RequiredFeature: "selfHostingLicense",
			Issuer:          "licensing.example.com",
		},
	})
	if err != nil {
		return err
	}
	defer svc.Close(context.Background())
	mux.Handle("/api/v1/licensing/", licensing.NewHandler(svc, myAuth, licensing.HandlerConfig{})) // rate limited by default
	return nil
}

// TestPackageDocCompiles: the Go code of the package doc is code that this
// package's tests compile (embedding), and it runs.
func TestPackageDocCompiles(t *testing.T) {
	docsnippet.Check(t, ".")
	mux := http.NewServeMux()
	auth := licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) { return licensing.Actor{}, licensing.ErrUnauthorized })
	if err := embedding(mux, staticOrgs{}, bytes.Repeat([]byte{1}, 32), auth); err != nil {
		t.Fatal(err)
	}
}

// A key leaked: replace it by a new one, which the owner hands to the
// customer, while the old one keeps working for a day so the customer's
// instance is not cut off.
func ExampleService_RotateKey() {
	ctx := context.Background()
	now := time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)
	svc, err := licensing.New(licensing.Config{
		Store: licensing.NewMemoryStore(),
		Organizations: staticOrgs{"org-1": {ID: "org-1", OwnerID: "user-1", Plan: "business",
			Active: true, Features: map[string]any{"selfHostingLicense": true}}},
		Pepper: bytes.Repeat([]byte{0x42}, 32),
		Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.example.com"},
		Now:    func() time.Time { return now },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close(ctx)
	owner := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	leaked, err := svc.CreateKey(ctx, owner, licensing.CreateKeyInput{InstanceName: "Production"})
	if err != nil {
		fmt.Println(err)
		return
	}

	rotated, old, err := svc.RotateKey(ctx, owner, leaked.Key.ID, 24*time.Hour)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("new key for:", rotated.Key.InstanceName)
	fmt.Println("old key ends:", old.ExpiresAt.Format(time.RFC3339))

	now = now.Add(25 * time.Hour)
	_, err = svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: leaked.LicenseKey})
	fmt.Println("old key:", err)
	res, err := svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: rotated.LicenseKey})
	fmt.Println("new key valid:", res.Valid, err)
	// Output:
	// new key for: Production
	// old key ends: 2026-02-21T10:30:00Z
	// old key: licensing: License key has expired
	// new key valid: true <nil>
}

// The owner reads what happened to a key, newest first, from the store's
// event log (the memory, file and PostgreSQL stores keep one).
func ExampleService_Events() {
	ctx := context.Background()
	svc, err := licensing.New(licensing.Config{
		Store: licensing.NewMemoryStore(),
		Organizations: staticOrgs{"org-1": {ID: "org-1", OwnerID: "user-1", Plan: "business",
			Active: true, Features: map[string]any{"selfHostingLicense": true}}},
		Pepper: bytes.Repeat([]byte{0x42}, 32),
		Policy: licensing.Policy{RequiredFeature: "selfHostingLicense", Issuer: "licensing.example.com"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close(ctx)
	owner := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	created, err := svc.CreateKey(ctx, owner, licensing.CreateKeyInput{InstanceName: "Production"})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := svc.RevokeKey(ctx, owner, created.Key.ID); err != nil {
		fmt.Println(err)
		return
	}
	page, err := svc.Events(ctx, owner, licensing.EventsInput{KeyID: created.Key.ID})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range page.Events {
		fmt.Println(e.Type, "by", e.UserID)
	}
	fmt.Println("more:", page.Next != "")
	// Output:
	// key.revoked by user-1
	// key.created by user-1
	// more: false
}
