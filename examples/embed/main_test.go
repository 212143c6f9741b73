package main

import (
	"bytes"
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
	h, closeService, err := newHandler(a, bytes.Repeat([]byte{1}, 32))
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
