//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// The product serves its license, then stops cleanly on SIGTERM (as under
// systemd, Docker or Kubernetes), not only on an interrupt.
func TestStopsOnSIGTERM(t *testing.T) {
	is := is.New(t)
	signing, err := licensing.GenerateSigningKeys(0)
	is.NoErr(err)
	o := &orgs{org: licensing.Organization{ID: "org-1", Name: "Acme", OwnerID: "u", Plan: "business", Active: true,
		Features: map[string]any{"selfHostingLicense": true}}}
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
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	is.NoErr(os.WriteFile(jwks, signing.JWKS(), 0o600))

	ready := make(chan string, 1)
	done := make(chan error, 1)
	env := func(k string) string {
		if k == "LICENSE_KEY" {
			return created.LicenseKey
		}
		return ""
	}
	go func() {
		done <- run([]string{"-server", licenseServer.URL, "-public-keys", jwks, "-addr", "127.0.0.1:0",
			"-cache", filepath.Join(dir, "license.json")}, env, slog.New(slog.DiscardHandler), func(a string) { ready <- a })
	}()
	addr := <-ready
	var got struct {
		Plan   string `json:"plan"`
		Reason string `json:"reason"`
	}
	for deadline := time.Now().Add(10 * time.Second); got.Plan != "business" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		res, err := http.Get("http://" + addr + "/")
		is.NoErr(err)
		json.NewDecoder(res.Body).Decode(&got)
		res.Body.Close()
	}
	is.Equal(got.Plan, "business") // the license was checked
	is.Equal(got.Reason, "valid")

	is.NoErr(syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case err := <-done:
		is.NoErr(err) // a clean stop
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not stop the product")
	}
}
