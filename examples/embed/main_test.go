package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

func TestEmbeddedFlow(t *testing.T) {
	is := is.New(t)
	a := &app{
		users: map[string]string{"alice-token": "alice", "bob-token": "bob"},
		orgs: map[string]licensing.Organization{"acme": {ID: "acme", Name: "Acme", OwnerID: "alice", Plan: "business",
			Active: true, Features: map[string]any{"selfHostingLicense": true}}},
	}
	h, closeService, err := newHandler(a, t.TempDir())
	is.NoErr(err)
	defer closeService(context.Background())
	srv := httptest.NewServer(h)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/")
	is.NoErr(err)
	is.Equal(res.StatusCode, 200) // the application's own route still works
	res.Body.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/licensing/keys", nil)
	req.Header.Set("Authorization", "Bearer alice-token")
	res, err = http.DefaultClient.Do(req)
	is.NoErr(err)
	is.Equal(res.StatusCode, 201)
	var created struct{ LicenseKey string }
	is.NoErr(json.NewDecoder(res.Body).Decode(&created))
	res.Body.Close()

	res, err = http.Post(srv.URL+"/api/v1/licensing/validate", "application/json",
		strings.NewReader(`{"licenseKey":"`+created.LicenseKey+`"}`))
	is.NoErr(err)
	is.Equal(res.StatusCode, 200) // the new key validates
	res.Body.Close()

	req, _ = http.NewRequest("GET", srv.URL+"/api/v1/licensing/keys", nil)
	req.Header.Set("Authorization", "Bearer bob-token")
	res, err = http.DefaultClient.Do(req)
	is.NoErr(err)
	is.Equal(res.StatusCode, 404) // bob owns no organization
	res.Body.Close()
}

// TestKeysSurviveARestart: the example keeps its pepper, signing keys and
// store in its directory, so a key issued before a restart validates after
// it, and its signing keys are the same.
func TestKeysSurviveARestart(t *testing.T) {
	is := is.New(t)
	a := &app{
		users: map[string]string{"alice-token": "alice"},
		orgs: map[string]licensing.Organization{"acme": {ID: "acme", Name: "Acme", OwnerID: "alice", Plan: "business",
			Active: true, Features: map[string]any{"selfHostingLicense": true}}},
	}
	dir := t.TempDir()
	post := func(h http.Handler, path, token, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	h, stop, err := newHandler(a, dir)
	is.NoErr(err)
	rec := post(h, "/api/v1/licensing/keys", "alice-token", "")
	is.Equal(rec.Code, 201)
	var created struct{ LicenseKey string }
	is.NoErr(json.Unmarshal(rec.Body.Bytes(), &created))
	is.Equal(post(h, "/api/v1/licensing/validate", "", `{"licenseKey":"`+created.LicenseKey+`"}`).Code, 200)
	jwks := func(h http.Handler) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/licensing/public-keys", nil))
		return rec.Body.String()
	}
	before := jwks(h)
	is.NoErr(stop(context.Background()))

	h, stop, err = newHandler(a, dir) // the restart
	is.NoErr(err)
	defer stop(context.Background())
	rec = post(h, "/api/v1/licensing/validate", "", `{"licenseKey":"`+created.LicenseKey+`"}`)
	is.Equal(rec.Code, 200)   // the key issued before the restart still validates
	is.Equal(jwks(h), before) // and tokens signed before it still verify
}
