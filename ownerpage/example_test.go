package ownerpage_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/licensekit/licensing/ownerpage"
)

// Mount the page at the root of a ServeMux, next to the licensing API
// (here a stand-in for licensing.NewHandler).
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/licensing/", http.NotFoundHandler()) // licensing.NewHandler(svc, auth)
	mux.Handle("/", ownerpage.Handler(ownerpage.Config{}))

	for _, path := range []string{"/", "/owner.js", "/nope"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Content-Type"))
	}
	// Output:
	// / 200 text/html; charset=utf-8
	// /owner.js 200 text/javascript; charset=utf-8
	// /nope 404 text/plain; charset=utf-8
}
