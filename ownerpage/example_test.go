package ownerpage_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/docsnippet"
	"github.com/licensekit/licensing/ownerpage"
)

// Mount the page at the root of a ServeMux, next to the licensing API, and
// a second copy under a prefix. This is the package doc's code.
func ExampleHandler() {
	svc, err := licensing.New(licensing.Config{
		Store: licensing.NewMemoryStore(),
		Organizations: licensing.OrganizationsFunc(func(context.Context, string) (licensing.Organization, error) {
			return licensing.Organization{}, licensing.ErrOrgNotFound
		}),
		Pepper: bytes.Repeat([]byte{0x42}, 32), // in production: 32 secret random bytes
		Policy: licensing.Policy{Issuer: "licensing.example.com"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Close(context.Background())
	auth := licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
		return licensing.Actor{}, licensing.ErrUnauthorized // a real application checks the bearer token
	})

	mux := http.NewServeMux()
	mux.Handle("/api/v1/licensing/", licensing.NewHandler(svc, auth, licensing.HandlerConfig{}))
	mux.Handle("/", ownerpage.Handler(ownerpage.Config{}))

	mux.Handle("/licenses/", http.StripPrefix("/licenses", ownerpage.Handler(ownerpage.Config{})))

	for _, path := range []string{"/", "/owner.js", "/nope", "/licenses/", "/api/v1/licensing/keys"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Content-Type"))
	}
	// Output:
	// / 200 text/html; charset=utf-8
	// /owner.js 200 text/javascript; charset=utf-8
	// /nope 404 text/plain; charset=utf-8
	// /licenses/ 200 text/html; charset=utf-8
	// /api/v1/licensing/keys 401 application/json
}

// TestPackageDocCompiles: the Go code of the package doc is code that this
// package's tests compile and run (ExampleHandler).
func TestPackageDocCompiles(t *testing.T) {
	docsnippet.Check(t, ".")
}
