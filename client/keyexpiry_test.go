package client_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/client"
)

// TestKeyExpiry: the License carries the key's expiry from the server's
// answer; within KeyExpiryWarning of it a valid license says
// ReasonKeyExpiring (a rotation's old key says so at once), after it the
// server's refusal is ErrKeyExpired (also an ErrInvalidKey) with the time,
// remembered offline; a key without expiry is as before.
func TestKeyExpiry(t *testing.T) {
	ctx := context.Background()
	t.Run("no expiry", func(t *testing.T) {
		is := is.New(t)
		w := newWorld(t)
		_, key := w.key(t)
		lic, err := w.client(t, key, filepath.Join(t.TempDir(), "cache")).Check(ctx)
		is.NoErr(err)
		is.Equal(lic.Reason, client.ReasonValid)
		is.True(lic.KeyExpiresAt.IsZero())
	})
	t.Run("expiring, then expired", func(t *testing.T) {
		is := is.New(t)
		w := newWorld(t)
		expires := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
		c, err := w.svc.CreateKey(ctx, w.owner, licensing.CreateKeyInput{ExpiresAt: expires})
		is.NoErr(err)
		cache := filepath.Join(t.TempDir(), "cache")
		logs := &logBuffer{}
		cl := w.client(t, c.LicenseKey, cache, func(cfg *client.Config) { cfg.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
		lic, err := cl.Check(ctx)
		is.NoErr(err)
		is.Equal(lic.Reason, client.ReasonValid) // 40 days ahead: nothing to tell yet
		is.Equal(lic.KeyExpiresAt, expires)

		w.clock.Add(30 * 24 * time.Hour) // 10 days before
		lic, err = cl.Check(ctx)
		is.NoErr(err) // still usable
		is.True(lic.Valid)
		is.Equal(lic.Reason, client.ReasonKeyExpiring) // the administrator should act
		is.Equal(lic.KeyExpiresAt, expires)
		is.True(strings.Contains(logs.String(), "level=WARN msg=\"licensing client: the license key expires soon")) // and is told
		is.True(strings.Contains(logs.String(), "keyExpiresAt=2026-04-01T00:00:00.000Z"))

		w.clock.Add(11 * 24 * time.Hour) // past it
		lic, err = cl.Check(ctx)
		is.True(errors.Is(err, client.ErrKeyExpired))
		is.True(errors.Is(err, client.ErrInvalidKey)) // a product that stops on an invalid key stops here too
		is.Equal(lic.Reason, client.ReasonKeyExpired)
		is.Equal(lic.KeyExpiresAt, expires) // when, from the signed refusal
		is.Equal(lic.ServerMessage, "License key has expired")
		is.Equal(lic.Source, client.SourceFallback)

		w.srv.Close() // offline: the signed refusal is remembered
		lic, err = cl.Check(ctx)
		is.True(errors.Is(err, client.ErrKeyExpired))
		is.Equal(lic.Reason, client.ReasonKeyExpired)
	})
	t.Run("rotated", func(t *testing.T) {
		is := is.New(t)
		w := newWorld(t)
		id, key := w.key(t)
		_, _, err := w.svc.RotateKey(ctx, w.owner, id, 7*24*time.Hour)
		is.NoErr(err)
		lic, err := w.client(t, key, filepath.Join(t.TempDir(), "cache")).Check(ctx)
		is.NoErr(err)
		is.Equal(lic.Reason, client.ReasonKeyExpiring) // the old key of a rotation: install the new one
		is.Equal(lic.KeyExpiresAt, w.clock.Now().Add(7*24*time.Hour))
	})
}

// TestKeyExpiryOffline: the last good answer, kept for an unreachable
// server, never outlives the key's expiry it carries: past it the license
// is not valid and says ReasonKeyExpired, as the server would (an old key
// of a rotation stops at the end of its overlap, offline too).
func TestKeyExpiryOffline(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	w := newWorld(t)
	expires := w.clock.Now().Add(3 * 24 * time.Hour) // within the 7 days' grace
	c, err := w.svc.CreateKey(ctx, w.owner, licensing.CreateKeyInput{ExpiresAt: expires})
	is.NoErr(err)
	cl := w.client(t, c.LicenseKey, filepath.Join(t.TempDir(), "cache"))
	lic, err := cl.Check(ctx)
	is.NoErr(err)
	is.Equal(lic.ValidUntil, expires) // the grace ends with the key

	w.srv.Close()
	w.clock.Add(2 * 24 * time.Hour) // offline, before the expiry: the cached answer
	lic, err = cl.Check(ctx)
	is.True(lic.Valid)
	is.Equal(lic.Source, client.SourceCache)
	is.True(errors.Is(lic.Warning, client.ErrUnreachable))

	w.clock.Add(24 * time.Hour) // offline, at the expiry: within grace, but the key has ended
	lic, err = cl.Check(ctx)
	is.True(!lic.Valid)
	is.Equal(lic.Source, client.SourceFallback)
	is.True(errors.Is(err, client.ErrKeyExpired))
	is.True(errors.Is(err, client.ErrUnreachable)) // and why the server was not asked
	is.Equal(lic.Reason, client.ReasonKeyExpired)
	is.Equal(lic.KeyExpiresAt, expires)
}

// TestKeyExpiryClockSkew: "expires soon" is judged on the server's time,
// which the client knows from the signed answer, not on a local clock that
// runs behind.
func TestKeyExpiryClockSkew(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	w := newWorld(t)
	expires := w.clock.Now().Add(10 * 24 * time.Hour) // within KeyExpiryWarning on the server's clock
	c, err := w.svc.CreateKey(ctx, w.owner, licensing.CreateKeyInput{ExpiresAt: expires})
	is.NoErr(err)
	behind := func() time.Time { return w.clock.Now().Add(-20 * 24 * time.Hour) }
	lic, err := w.client(t, c.LicenseKey, filepath.Join(t.TempDir(), "cache"), func(cfg *client.Config) { cfg.Now = behind }).Check(ctx)
	is.NoErr(err)
	is.True(lic.Valid)
	is.Equal(lic.Reason, client.ReasonKeyExpiring) // 30 days away on the local clock, 10 on the server's
}
