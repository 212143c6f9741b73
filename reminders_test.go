package licensing_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestExpiryReminders: key.expiring is logged once per key and expiry,
// ExpiryReminder (14 days by default) before it, by the scan of any of the
// servers that share the store, and at once by a renewal into the window.
func TestExpiryReminders(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	r := e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2026-03-20T10:30:00Z"}`) // 28 days ahead
	is.Equal(r.status, 201)
	id := r.body["id"].(string)
	never, _ := e.create(t, "t-owner", "never expires")
	expiring := func() []licensing.Event { return e.logged(t, licensing.EventQuery{Type: licensing.EventKeyExpiring}) }

	n, err := e.svc.RemindExpiringNow(ctx)
	is.NoErr(err)
	is.Equal(n, 0) // 28 days ahead: not yet
	e.clock.Add(13 * 24 * time.Hour)
	n, err = e.svc.RemindExpiringNow(ctx)
	is.NoErr(err)
	is.Equal(n, 0) // 15 days ahead: not yet
	e.clock.Add(24 * time.Hour)
	n, err = e.svc.RemindExpiringNow(ctx)
	is.NoErr(err)
	is.Equal(n, 1) // 14 days ahead
	got := expiring()
	is.Equal(len(got), 1)
	is.Equal(got[0].KeyID, id)
	is.Equal(got[0].ExpiresAt, time.Date(2026, 3, 20, 10, 30, 0, 0, time.UTC))
	is.Equal(len(e.eventsOf(licensing.EventKeyExpiring)), 1) // OnEvent too

	n, err = e.svc.RemindExpiringNow(ctx)
	is.NoErr(err)
	is.Equal(n, 0) // once per key and expiry

	// A second server on the same store (a restart, or another node)
	// sends the same event, which the log keeps once.
	other, err := licensing.New(licensing.Config{Store: e.store, Organizations: e.orgs, Pepper: testPepper,
		Policy: licensing.Policy{Issuer: "licensing.test"}, Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	is.NoErr(err)
	defer other.Close(ctx)
	_, err = other.RemindExpiringNow(ctx) // it did not know (or its scan at start sent it already)
	is.NoErr(err)
	is.Equal(len(expiring()), 1)

	// A renewal to another expiry inside the window is reminded of at once;
	// one outside it, by the scan when its time comes.
	r = e.do(t, "PATCH", keysPath+"/"+never, "t-owner", `{"expiresAt":"2026-03-10T00:00:00Z"}`)
	is.Equal(r.status, 200)
	got = expiring()
	is.Equal(len(got), 2)
	is.Equal(got[0].KeyID, never)
	r = e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"expiresAt":"2026-12-01T00:00:00Z"}`)
	is.Equal(r.status, 200)
	is.Equal(len(expiring()), 2)
	e.clock.Add(260 * 24 * time.Hour) // 2026-11-22
	n, err = e.svc.RemindExpiringNow(ctx)
	is.NoErr(err)
	is.Equal(n, 1)
	got = expiring()
	is.Equal(len(got), 3) // the same key, its new expiry
	is.Equal(got[0].KeyID, id)
	is.Equal(got[0].ExpiresAt, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))

	// Revoked keys are not reminded of.
	r = e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2027-01-01T00:00:00Z"}`)
	gone := r.body["id"].(string)
	is.Equal(e.do(t, "DELETE", keysPath+"/"+gone, "t-owner", "").status, 200)
	e.clock.Add(30 * 24 * time.Hour)
	n, err = e.svc.RemindExpiringNow(ctx)
	is.NoErr(err)
	is.Equal(n, 0)
}

// TestExpiryRemindersOff: a negative ExpiryReminder sends none.
func TestExpiryRemindersOff(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.ExpiryReminder = -1 })
	r := e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2026-02-21T00:00:00Z"}`)
	is.Equal(r.status, 201)
	n, err := e.svc.RemindExpiringNow(context.Background())
	is.NoErr(err)
	is.Equal(n, 0)
	is.Equal(len(e.logged(t, licensing.EventQuery{Type: licensing.EventKeyExpiring})), 0)
}

// TestExpiryRemindersMoreKeysThanRemembered: with more keys inside the
// window than the Service remembers reminders of (100,000), each is still
// reminded of once: a later scan neither appends nor tells (OnEvent) the
// reminders of the keys the cache forgot.
func TestExpiryRemindersMoreKeysThanRemembered(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	e.svc.RememberRemindersAtMost(2)
	for range 3 {
		r := e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2026-03-20T10:30:00Z"}`) // 28 days ahead
		is.Equal(r.status, 201)
	}
	e.clock.Add(20 * 24 * time.Hour) // 8 days ahead: inside the window
	n, err := e.svc.RemindExpiringNow(ctx)
	is.NoErr(err)
	is.Equal(n, 3)
	for range 3 {
		e.clock.Add(time.Minute)
		n, err = e.svc.RemindExpiringNow(ctx)
		is.NoErr(err)
		is.Equal(n, 0) // sent already
	}
	is.Equal(len(e.eventsOf(licensing.EventKeyExpiring)), 3) // told once each
	is.Equal(len(e.logged(t, licensing.EventQuery{Type: licensing.EventKeyExpiring})), 3)
}

// TestExpiryRemindersAfterRestart: a server that starts on a store whose
// log holds a key's reminder (a restart, or a second server) neither
// appends it again nor tells it (OnEvent) again.
func TestExpiryRemindersAfterRestart(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	r := e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2026-03-01T00:00:00Z"}`) // 9 days ahead: reminded at once
	is.Equal(r.status, 201)
	is.Equal(len(e.eventsOf(licensing.EventKeyExpiring)), 1)

	var mu sync.Mutex
	var told []licensing.Event
	other, err := licensing.New(licensing.Config{Store: e.store, Organizations: e.orgs, Pepper: testPepper,
		Policy: licensing.Policy{Issuer: "licensing.test"}, Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler),
		OnEvent: func(ctx context.Context, ev licensing.Event) {
			mu.Lock()
			defer mu.Unlock()
			told = append(told, ev)
		}})
	is.NoErr(err)
	n, err := other.RemindExpiringNow(ctx) // after (or as) its scan at start
	is.NoErr(err)
	is.Equal(n, 0)
	r = e.do(t, "PATCH", keysPath+"/"+r.body["id"].(string), "t-owner", `{"expiresAt":"2026-03-01T00:00:00Z"}`) // the same expiry
	is.Equal(r.status, 200)
	is.NoErr(other.Close(ctx))
	mu.Lock()
	is.Equal(len(told), 0) // the log had it: not told again
	mu.Unlock()
	is.Equal(len(e.eventsOf(licensing.EventKeyExpiring)), 1)
	is.Equal(len(e.logged(t, licensing.EventQuery{Type: licensing.EventKeyExpiring})), 1)
}
