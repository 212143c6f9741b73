package licensing_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/filestore"
)

func TestPepperFingerprint(t *testing.T) {
	is := is.New(t)
	p := bytes.Repeat([]byte{7}, 32)
	fp := licensing.PepperFingerprint(p)
	is.Equal(len(fp), 64)                                                // hex SHA-256
	is.Equal(fp, licensing.PepperFingerprint(append([]byte(nil), p...))) // stable
	q := bytes.Repeat([]byte{7}, 32)
	q[31] = 8
	is.True(fp != licensing.PepperFingerprint(q)) // one byte changes it
	h, err := licensing.NewHMACHasher(p)
	is.NoErr(err)
	is.True(fp != h.LookupValue(""))                   // not the lookup value of any key
	is.True(!strings.Contains(fp, "0707070707070707")) // the pepper does not show
}

// TestNewRefusesAnotherPeppersStore: New hands the pepper's fingerprint to a
// store that can tell (here the file store, opened without any option), and
// refuses to start over keys issued under another pepper.
func TestNewRefusesAnotherPeppersStore(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	orgs := &testOrgs{m: map[string]licensing.Organization{"org-1": {ID: "org-1", OwnerID: "user-1", Active: true}}}
	start := func(pepper []byte) (*licensing.Service, func(), error) {
		t.Helper()
		st, err := filestore.Open(dir, filestore.Options{Logger: slog.New(slog.DiscardHandler)})
		is.NoErr(err)
		svc, err := licensing.New(licensing.Config{Store: st, Organizations: orgs, Pepper: pepper,
			Policy: licensing.Policy{Issuer: "licensing.test"}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return svc, func() { svc.Close(ctx); st.Close() }, nil
	}
	pepperA, pepperB := bytes.Repeat([]byte{'a'}, 32), bytes.Repeat([]byte{'b'}, 32)

	svc, stop, err := start(pepperB)
	is.NoErr(err)
	stop() // a store without keys adopts a new pepper
	svc, stop, err = start(pepperA)
	is.NoErr(err)
	created, err := svc.CreateKey(ctx, licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}, licensing.CreateKeyInput{})
	is.NoErr(err)
	stop()

	_, _, err = start(pepperB)
	is.True(errors.Is(err, licensing.ErrPepperMismatch))                          // refused, not every key answered 401
	is.True(strings.Contains(err.Error(), "Config.Pepper"))                       // names the setting
	is.True(strings.Contains(err.Error(), dir))                                   // and the store
	is.True(!strings.Contains(err.Error(), licensing.PepperFingerprint(pepperA))) // nothing of the pepper

	svc, stop, err = start(pepperA)
	is.NoErr(err) // the original pepper still opens it
	defer stop()
	_, err = svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: created.LicenseKey})
	is.NoErr(err)
}

// TestNewChecksAnHMACHashersPepper: an embedder who builds the default
// Hasher itself (Config.Hasher set to NewHMACHasher(pepper), no
// Config.Pepper) has its pepper checked by the store all the same.
func TestNewChecksAnHMACHashersPepper(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	orgs := &testOrgs{m: map[string]licensing.Organization{"org-1": {ID: "org-1", OwnerID: "user-1", Active: true}}}
	start := func(pepper []byte) (*licensing.Service, func(), error) {
		t.Helper()
		st, err := filestore.Open(dir, filestore.Options{Logger: slog.New(slog.DiscardHandler)})
		is.NoErr(err)
		h, err := licensing.NewHMACHasher(pepper)
		is.NoErr(err)
		svc, err := licensing.New(licensing.Config{Store: st, Organizations: orgs, Hasher: h,
			Policy: licensing.Policy{Issuer: "licensing.test"}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		return svc, func() { svc.Close(ctx); st.Close() }, nil
	}
	pepperA, pepperB := bytes.Repeat([]byte{'a'}, 32), bytes.Repeat([]byte{'b'}, 32)
	svc, stop, err := start(pepperA)
	is.NoErr(err)
	_, err = svc.CreateKey(ctx, licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}, licensing.CreateKeyInput{})
	is.NoErr(err)
	stop()
	_, _, err = start(pepperB)
	is.True(errors.Is(err, licensing.ErrPepperMismatch)) // refused, as with Config.Pepper
	_, stop, err = start(pepperA)
	is.NoErr(err)
	stop()
}
