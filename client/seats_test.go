package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/client"
)

// TestSeatLimit: an instance refused because every seat of its key is
// taken gets ErrSeatLimit and ReasonSeatLimit with the server's text (not
// an inactive organization), the fallback plan, and keeps them offline;
// once a seat is free it validates again.
func TestSeatLimit(t *testing.T) {
	ctx := context.Background()
	is := is.New(t)
	w := newWorld(t)
	c, err := w.svc.CreateKey(ctx, w.owner, licensing.CreateKeyInput{MaxInstances: 1})
	is.NoErr(err)
	first := w.client(t, c.LicenseKey, filepath.Join(t.TempDir(), "cache"), func(cfg *client.Config) { cfg.InstanceID = "instance-one" })
	_, err = first.Check(ctx)
	is.NoErr(err) // takes the one seat

	second := w.client(t, c.LicenseKey, filepath.Join(t.TempDir(), "cache"), func(cfg *client.Config) { cfg.InstanceID = "instance-two" })
	lic, err := second.Check(ctx)
	is.True(errors.Is(err, client.ErrSeatLimit))
	is.True(!errors.Is(err, client.ErrInactive)) // not taken for a deactivated organization
	is.Equal(lic.Reason, client.ReasonSeatLimit)
	is.Equal(lic.ServerMessage, "License key is already used by the maximum number of instances (1)")
	is.Equal(lic.Source, client.SourceFallback)
	is.True(!lic.Valid)

	w.srv.Close() // offline: the signed refusal is remembered
	lic, err = second.Check(ctx)
	is.True(errors.Is(err, client.ErrSeatLimit))
	is.Equal(lic.Reason, client.ReasonSeatLimit)
}

// TestSeatReleased: the owner frees the seat and the refused instance
// validates at its next check.
func TestSeatReleased(t *testing.T) {
	ctx := context.Background()
	is := is.New(t)
	w := newWorld(t)
	c, err := w.svc.CreateKey(ctx, w.owner, licensing.CreateKeyInput{MaxInstances: 1})
	is.NoErr(err)
	_, err = w.client(t, c.LicenseKey, filepath.Join(t.TempDir(), "cache"), func(cfg *client.Config) { cfg.InstanceID = "instance-one" }).Check(ctx)
	is.NoErr(err)
	second := w.client(t, c.LicenseKey, filepath.Join(t.TempDir(), "cache"), func(cfg *client.Config) { cfg.InstanceID = "instance-two" })
	_, err = second.Check(ctx)
	is.True(errors.Is(err, client.ErrSeatLimit))
	is.NoErr(w.svc.ReleaseInstance(ctx, w.owner, c.Key.ID, "instance-one"))
	lic, err := second.Check(ctx)
	is.NoErr(err)
	is.True(lic.Valid)
	is.Equal(lic.Reason, client.ReasonValid)
}
