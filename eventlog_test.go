package licensing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/webhook"
)

const eventsPath = "/api/v1/licensing/events"

// logged returns org-1's events in the env's store, newest first, after
// the validate route's events were written.
func (e *env) logged(t *testing.T, q licensing.EventQuery) []licensing.Event {
	t.Helper()
	if err := e.svc.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	events, err := e.store.Events(context.Background(), "org-1", q)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func types(events []licensing.Event) []licensing.EventType {
	out := make([]licensing.EventType, len(events))
	for i, ev := range events {
		out[i] = ev.Type
	}
	return out
}

// TestEventLogOwnerActions: every owner action is in the store's event log
// when its call returns, with its actor, an id of its own, and the id
// OnEvent saw.
func TestEventLogOwnerActions(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, _ := e.create(t, "t-owner", "prod")
	r := e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"expiresAt":"2026-06-01T00:00:00Z"}`)
	is.Equal(r.status, 200)
	r = e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "")
	is.Equal(r.status, 200)
	r = e.do(t, "POST", keysPath+"/"+id+"/rotate", "t-owner", `{"overlapHours":24}`)
	is.Equal(r.status, 201)
	newID := r.body["id"].(string)
	r = e.do(t, "DELETE", keysPath+"/"+newID, "t-owner", "")
	is.Equal(r.status, 200)

	events, err := e.store.Events(context.Background(), "org-1", licensing.EventQuery{}) // no Flush: owner actions are logged synchronously
	is.NoErr(err)
	is.Equal(types(events), []licensing.EventType{licensing.EventKeyRevoked, licensing.EventKeyExpiring, licensing.EventKeyRotated,
		licensing.EventKeyCreated, licensing.EventTokenIssued, licensing.EventKeyRenewed, licensing.EventKeyCreated}) // newest first; the old key ends within the reminder window
	seen := map[string]bool{}
	for _, ev := range events {
		if ev.Type != licensing.EventKeyExpiring { // the server's, not the owner's
			is.Equal(ev.UserID, "user-1") // the actor
		}
		is.True(ev.ID != "" && !seen[ev.ID])
		seen[ev.ID] = true
	}
	is.Equal(events[1].KeyID, id)
	is.Equal(events[2].KeyID, id)
	is.Equal(events[2].RotatedTo, newID)
	is.Equal(events[5].ExpiresAt, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	told := e.eventsOf(licensing.EventKeyRevoked)
	is.Equal(len(told), 1)
	is.Equal(told[0].ID, events[0].ID) // OnEvent and the log share the id (a webhook-id)
}

// TestEventLogValidationOutcomes: the notable validation outcomes reach the
// log off the request path, at most one per key and type per 10 minutes;
// successes and failures that name no key never do.
func TestEventLogValidationOutcomes(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	_, good := e.create(t, "t-owner", "good")
	revokedID, revoked := e.create(t, "t-owner", "gone")
	is.Equal(e.do(t, "DELETE", keysPath+"/"+revokedID, "t-owner", "").status, 200)
	for range 3 {
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(good, "")).status, 200)
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(revoked, "")).status, 401)
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(strings.Repeat("ab", 32), "")).status, 401)
		is.Equal(e.do(t, "POST", validatePath, "", validateBody("short", "")).status, 401)
	}
	failed := e.logged(t, licensing.EventQuery{Type: licensing.EventValidationFailed})
	is.Equal(len(failed), 1) // three uses of the revoked key, one event in 10 minutes
	is.Equal(failed[0].KeyID, revokedID)
	is.Equal(failed[0].Outcome, licensing.OutcomeRevoked)
	is.Equal(failed[0].UserID, "")                                                         // no actor: an instance did it
	is.Equal(len(e.logged(t, licensing.EventQuery{Type: licensing.EventKeyValidated})), 0) // successes are not logged

	e.clock.Add(10 * time.Minute)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(revoked, "")).status, 401)
	is.Equal(len(e.logged(t, licensing.EventQuery{Type: licensing.EventValidationFailed})), 2) // the next period logs it again
	told := 0
	for _, ev := range e.eventsOf(licensing.EventValidationFailed) {
		if ev.KeyID == revokedID {
			told++
		}
	}
	is.Equal(told, 4) // OnEvent still sees every one
}

// TestEventLogExpiredKey: the first refusal of an expired key is logged as
// key.expired, with the expiry, even without OnEvent.
func TestEventLogExpiredKey(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, func(c *licensing.Config) { c.OnEvent = nil }, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	r := e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2026-03-01T00:00:00Z"}`)
	is.Equal(r.status, 201)
	key := r.body["licenseKey"].(string)
	e.clock.Add(30 * 24 * time.Hour)
	for range 3 {
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, "")).status, 401)
	}
	expired := e.logged(t, licensing.EventQuery{Type: licensing.EventKeyExpired})
	is.Equal(len(expired), 1)
	is.Equal(expired[0].ExpiresAt, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
}

// TestEventLogHoldsNoKey: no event of the log holds the full key, in any
// field or encoding, whatever happened to the key.
func TestEventLogHoldsNoKey(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	id, key := e.create(t, "t-owner", "prod")
	e.do(t, "POST", validatePath, "", validateBody(key, `,"instanceId":"a"`))
	e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "")
	r := e.do(t, "POST", keysPath+"/"+id+"/rotate", "t-owner", `{"overlapHours":0}`)
	newKey := r.body["licenseKey"].(string)
	e.do(t, "DELETE", keysPath+"/"+r.body["id"].(string), "t-owner", "")
	e.do(t, "POST", validatePath, "", validateBody(newKey, ""))
	events, err := e.store.EventsAfter(context.Background(), 0, 0)
	is.NoErr(err)
	is.True(len(events) >= 5)
	raw, err := json.Marshal(events)
	is.NoErr(err)
	var fields strings.Builder
	for _, ev := range events {
		fields.WriteString(strings.Join([]string{ev.ID, ev.KeyID, ev.MaskedKey, ev.UserID, ev.InstanceID, ev.RotatedTo}, " "))
	}
	for _, k := range []string{key, newKey} {
		for _, part := range []string{k, k[:24], k[40:]} {
			is.True(!strings.Contains(string(raw), part))     // not in the JSON of the events
			is.True(!strings.Contains(fields.String(), part)) // nor in any field
		}
	}
}

// TestEventLogRetention: the pruner keeps EventRetention of events and at
// most EventRetentionCount of them.
func TestEventLogRetention(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t, func(c *licensing.Config) { c.EventRetention = 24 * time.Hour; c.EventRetentionCount = 3 })
	e.create(t, "t-owner", "old")
	e.clock.Add(25 * time.Hour)
	for range 4 {
		e.create(t, "t-owner", "new")
	}
	_, err := e.svc.PruneEventsNow(ctx) // (the pruner's run at start may have come first)
	is.NoErr(err)
	left := e.logged(t, licensing.EventQuery{})
	is.Equal(len(left), 3) // the one past a day went, and one more past the count
	for _, ev := range left {
		is.Equal(ev.Time, e.clock.Now()) // the newest
	}

	d := newEnv(t, nil) // the defaults: 90 days, 1,000,000 events
	d.create(t, "t-owner", "a")
	d.clock.Add(89 * 24 * time.Hour)
	d.create(t, "t-owner", "b")
	_, err = d.svc.PruneEventsNow(ctx)
	is.NoErr(err)
	is.Equal(len(d.logged(t, licensing.EventQuery{})), 2)
	d.clock.Add(25 * time.Hour)
	n, err := d.svc.PruneEventsNow(ctx)
	is.NoErr(err)
	is.Equal(n, 1) // 90 days by default
	is.Equal(len(d.logged(t, licensing.EventQuery{})), 1)
}

// TestEventsRoute: GET /events pages the organization's log newest first
// with authenticated cursors, filters by key and type, and refuses bad
// input with 400.
func TestEventsRoute(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	var ids []string
	for range 7 {
		id, _ := e.create(t, "t-owner", "k")
		ids = append(ids, id)
	}
	is.Equal(e.do(t, "DELETE", keysPath+"/"+ids[2], "t-owner", "").status, 200)

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"limit": {"3"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := e.do(t, "GET", eventsPath+"?"+q.Encode(), "t-owner", "")
		is.Equal(r.status, 200)
		is.Equal(r.header.Get("Cache-Control"), "no-store")
		for _, raw := range r.body["events"].([]any) {
			ev := raw.(map[string]any)
			got = append(got, ev["type"].(string)+" "+ev["keyId"].(string))
		}
		if r.body["nextCursor"] == nil {
			is.Equal(pages, 2) // 8 events, 3 a page
			break
		}
		cursor = r.body["nextCursor"].(string)
	}
	want := []string{"key.revoked " + ids[2]}
	for i := 6; i >= 0; i-- {
		want = append(want, "key.created "+ids[i])
	}
	is.Equal(got, want) // newest first, the organization's only

	r := e.do(t, "GET", eventsPath+"?keyId="+ids[2], "t-owner", "")
	is.Equal(r.status, 200)
	evs := r.body["events"].([]any)
	is.Equal(len(evs), 2) // one key's history
	first := evs[0].(map[string]any)
	is.Equal(first["type"], "key.revoked")
	is.Equal(first["actor"], "user-1")
	is.True(strings.Contains(first["maskedKey"].(string), "..."))
	is.Equal(first["data"], map[string]any{})
	r = e.do(t, "GET", eventsPath+"?type=key.revoked", "t-owner", "")
	is.Equal(len(r.body["events"].([]any)), 1)
	r = e.do(t, "GET", eventsPath, "t-owner", "")
	is.Equal(len(r.body["events"].([]any)), 8) // default limit 50
	is.Equal(r.body["nextCursor"], nil)

	other := e.do(t, "GET", eventsPath+"?limit=1", "t-other", "", "X-Organization", "org-2")
	is.Equal(other.status, 200)
	is.Equal(len(other.body["events"].([]any)), 0) // another organization sees none of them
	for _, tc := range []struct{ name, query, token string }{
		{"limit 0", "?limit=0", "t-owner"},
		{"limit 501", "?limit=501", "t-owner"},
		{"limit word", "?limit=ten", "t-owner"},
		{"forged cursor", "?cursor=" + strings.Repeat("A", 32), "t-owner"},
		{"another org's cursor", "?cursor=" + cursor, "t-other"},
		{"bad key id", "?keyId=nope", "t-owner"},
		{"unknown type", "?type=key.deleted", "t-owner"},
		{"repeated limit", "?limit=1&limit=2", "t-owner"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "GET", eventsPath+tc.query, tc.token, "", "X-Organization", map[string]string{"t-owner": "org-1", "t-other": "org-2"}[tc.token])
			is.Equal(r.status, 400)
			is.True(r.body["error"] != "")
		})
	}
	is.Equal(e.do(t, "GET", eventsPath, "t-member", "").status, 403) // owners only
	is.Equal(e.do(t, "GET", eventsPath, "", "").status, 401)
}

// TestEventsRouteWithoutEventLog: a store without an event log answers 501
// with the way out, not an empty list.
func TestEventsRouteWithoutEventLog(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.Store = struct{ licensing.Store }{c.Store} })
	e.create(t, "t-owner", "k") // keys work as before
	r := e.do(t, "GET", eventsPath, "t-owner", "")
	is.Equal(r.status, 501)
	is.True(strings.Contains(r.body["error"].(string), "licensing.EventLog"))
}

// TestEventJSON: an event's JSON is the API's object, with its type's
// fields in data.
func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		ev   licensing.Event
		want string
	}{
		{"renewed to never", licensing.Event{ID: "e1", Type: licensing.EventKeyRenewed, Time: at, KeyID: "k", MaskedKey: "m", UserID: "u"},
			`{"id":"e1","type":"key.renewed","keyId":"k","maskedKey":"m","actor":"u","occurredAt":"2026-02-20T10:30:00+00:00","data":{"expiresAt":null}}`},
		{"rotated", licensing.Event{ID: "e2", Type: licensing.EventKeyRotated, Time: at, KeyID: "k", ExpiresAt: at, RotatedTo: "k2"},
			`{"id":"e2","type":"key.rotated","keyId":"k","maskedKey":null,"actor":null,"occurredAt":"2026-02-20T10:30:00+00:00","data":{"expiresAt":"2026-02-20T10:30:00+00:00","rotatedTo":"k2"}}`},
		{"seat limit", licensing.Event{ID: "e3", Type: licensing.EventSeatLimitReached, Time: at, KeyID: "k", InstanceID: "i", MaxInstances: 2},
			`{"id":"e3","type":"key.seat_limit_reached","keyId":"k","maskedKey":null,"actor":null,"occurredAt":"2026-02-20T10:30:00+00:00","data":{"instanceId":"i","maxInstances":2}}`},
		{"revoked key used", licensing.Event{ID: "e4", Type: licensing.EventValidationFailed, Time: at, KeyID: "k", Outcome: licensing.OutcomeRevoked},
			`{"id":"e4","type":"key.validation_failed","keyId":"k","maskedKey":null,"actor":null,"occurredAt":"2026-02-20T10:30:00+00:00","data":{"outcome":"revoked"}}`},
		{"shared", licensing.Event{ID: "e5", Type: licensing.EventKeyShared, Time: at, KeyID: "k", InstanceID: "i", InstanceCount: 3},
			`{"id":"e5","type":"key.shared","keyId":"k","maskedKey":null,"actor":null,"occurredAt":"2026-02-20T10:30:00+00:00","data":{"instanceId":"i","instanceCount":3}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			b, err := json.Marshal(tc.ev)
			is.NoErr(err)
			is.Equal(string(b), tc.want)
			body, err := webhook.EventBody(tc.ev)
			is.NoErr(err)
			is.Equal(string(body), tc.want) // a webhook delivery carries the same object
		})
	}
}

// TestEventLogSeatOutcomes: the seat outcomes of validation reach the log:
// key.activated once per key, key.seat_limit_reached with the refused
// instance and the limit (once in 10 minutes), key.shared with the count.
func TestEventLogSeatOutcomes(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	r := e.do(t, "POST", keysPath, "t-owner", `{"maxInstances":1}`)
	is.Equal(r.status, 201)
	limited, limitedKey := r.body["id"].(string), r.body["licenseKey"].(string)
	open, openKey := e.create(t, "t-owner", "no limit")
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(limitedKey, `"instanceId":"a"`)).status, 200)
	for range 3 {
		is.Equal(e.do(t, "POST", validatePath, "", validateBody(limitedKey, `"instanceId":"b"`)).status, 403)
	}
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(openKey, `"instanceId":"a"`)).status, 200)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(openKey, `"instanceId":"b"`)).status, 200)

	activated := e.logged(t, licensing.EventQuery{Type: licensing.EventKeyActivated})
	is.Equal(len(activated), 2) // one per key
	limit := e.logged(t, licensing.EventQuery{Type: licensing.EventSeatLimitReached})
	is.Equal(len(limit), 1) // three refusals, one event in 10 minutes
	is.Equal(limit[0].KeyID, limited)
	is.Equal(limit[0].InstanceID, "b")
	is.Equal(limit[0].MaxInstances, 1)
	shared := e.logged(t, licensing.EventQuery{Type: licensing.EventKeyShared})
	is.Equal(len(shared), 1)
	is.Equal(shared[0].KeyID, open)
	is.Equal(shared[0].InstanceCount, 2)
	is.Equal(shared[0].InstanceID, "b")
}

// TestEventLogActivationOnceAcrossServers: two servers on one store that
// both see a key's first validation log one key.activated (its id is
// derived from the key).
func TestEventLogActivationOnceAcrossServers(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	_, key := e.create(t, "t-owner", "k")
	other, err := licensing.New(licensing.Config{Store: e.store, Organizations: e.orgs, Pepper: testPepper,
		Policy: licensing.Policy{Issuer: "licensing.test"}, Now: e.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	is.NoErr(err)
	defer other.Close(ctx)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, `"instanceId":"a"`)).status, 200)
	_, err = other.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: key, InstanceID: "b"}) // before either wrote ActivatedAt
	is.NoErr(err)
	is.NoErr(other.Flush(ctx))
	activated := e.logged(t, licensing.EventQuery{Type: licensing.EventKeyActivated})
	is.Equal(len(activated), 1) // the second server's is the same event
}

// TestEventLogConcurrentUse: keys created through the Service (whose
// writer appends their events), events appended directly with Times going
// back (so that prunes rebuild the memory store's log), owner pages
// (Service.Events), EventsAfter and prunes to a few events, all at once
// (run with -race): every event read keeps its strings unchanged after
// the log moved on, and every page is newest first.
func TestEventLogConcurrentUse(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	e := newEnv(t, func(c *licensing.Config) { c.EventRetentionCount = 7 })
	owner := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	type read struct {
		got  licensing.Event
		copy string // the event as it was read, every field
	}
	var mu sync.Mutex
	var reads []read
	keep := func(events []licensing.Event) {
		for i, ev := range events {
			if i > 0 && ev.Seq >= events[i-1].Seq {
				t.Errorf("Seq %d after %d: not newest first", ev.Seq, events[i-1].Seq)
			}
			mu.Lock()
			reads = append(reads, read{ev, fmt.Sprintf("%#v", ev)})
			mu.Unlock()
		}
	}
	var writers, others sync.WaitGroup
	stop := make(chan struct{})
	writers.Go(func() { // keys created through the Service
		for i := range 60 {
			if _, err := e.svc.CreateKey(ctx, owner, licensing.CreateKeyInput{InstanceName: fmt.Sprint("i-", i)}); err != nil {
				t.Error(err)
			}
		}
	})
	writers.Go(func() { // events whose Times go back and forth
		base := e.clock.Now()
		for i := range 300 {
			ev := licensing.Event{ID: fmt.Sprint("direct-", i), Type: licensing.EventKeyShared, OrganizationID: "org-1",
				KeyID: fmt.Sprint("00000000-0000-4000-8000-00000000000", i%3), Time: base.Add(time.Duration(i%7-3) * time.Hour),
				InstanceID: strings.Repeat(fmt.Sprint(i%10), 1000*(1+i%40))} // 20 KB on average: the arena releases chunks
			if err := e.store.AppendEvents(ctx, []licensing.Event{ev, ev}); err != nil {
				t.Error(err)
			}
		}
	})
	for range 2 {
		others.Go(func() { // readers
			for {
				select {
				case <-stop:
					return
				default:
				}
				page, err := e.svc.Events(ctx, owner, licensing.EventsInput{Limit: 5})
				if err != nil {
					t.Error(err)
				}
				keep(page.Events)
				byKey, err := e.store.Events(ctx, "org-1", licensing.EventQuery{KeyID: "00000000-0000-4000-8000-000000000001"})
				if err != nil {
					t.Error(err)
				}
				keep(byKey)
				after, err := e.store.EventsAfter(ctx, 0, 0)
				if err != nil {
					t.Error(err)
				}
				for i := 1; i < len(after); i++ {
					if after[i].Seq <= after[i-1].Seq {
						t.Errorf("EventsAfter: Seq %d after %d", after[i].Seq, after[i-1].Seq)
					}
				}
			}
		})
	}
	others.Go(func() { // the pruner, by count and by age
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := e.svc.PruneEventsNow(ctx); err != nil {
				t.Error(err)
			}
			if _, err := e.store.PruneEvents(ctx, e.clock.Now().Add(-time.Duration(i%4)*time.Hour), 0); err != nil {
				t.Error(err)
			}
		}
	})
	writers.Wait()
	close(stop)
	others.Wait()
	is.True(len(reads) > 0)
	for _, r := range reads {
		is.Equal(fmt.Sprintf("%#v", r.got), r.copy) // the strings handed out never changed
	}
}
