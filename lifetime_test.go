package licensing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

const wantExpired = `{"valid":false,"error":"License key has expired","expiresAt":"2026-03-01T00:00:00+00:00"}` + "\n"

// listed returns the list item of key id.
func (e *env) listed(t *testing.T, id string) map[string]any {
	t.Helper()
	for _, k := range e.do(t, "GET", keysPath, "t-owner", "").body["keys"].([]any) {
		if m := k.(map[string]any); m["id"] == id {
			return m
		}
	}
	t.Fatalf("key %s is not listed", id)
	return nil
}

// TestKeyExpiry: a key created with expiresAt validates with expiresAt in
// its answer until then, and after it answers 401 "License key has expired"
// with the time, to the holder of the real key only; the first refused
// validation sends key.expired, once. Renewal (PATCH) makes it validate
// again, null clears the expiry, a revoked key cannot be renewed.
func TestKeyExpiry(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	r := e.do(t, "POST", keysPath, "t-owner", `{"instanceName":"prod","expiresAt":"2026-03-01T02:00:00+02:00"}`)
	is.Equal(r.status, 201)
	is.Equal(r.body["expiresAt"], "2026-03-01T00:00:00+00:00") // in UTC, as every time
	id, key := r.body["id"].(string), r.body["licenseKey"].(string)
	is.Equal(e.listed(t, id)["expiresAt"], "2026-03-01T00:00:00+00:00")

	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 200)
	is.Equal(r.body["expiresAt"], "2026-03-01T00:00:00+00:00") // so the instance can warn its administrator

	e.clock.Add(8*24*time.Hour + 13*time.Hour + 30*time.Minute) // 2026-03-01T00:00:00: the expiry itself
	for range 3 {
		r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
		is.Equal(r.status, 401)
		is.Equal(r.raw, wantExpired) // the holder of the key learns that it expired, and when
	}
	expired := e.eventsOf(licensing.EventKeyExpired)
	is.Equal(len(expired), 1) // once per key, at the first refused validation
	is.Equal(expired[0].KeyID, id)
	is.Equal(expired[0].ExpiresAt, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	failed := e.eventsOf(licensing.EventValidationFailed)
	is.Equal(len(failed), 3)
	is.Equal(failed[0].Outcome, licensing.OutcomeExpired)

	// Unknown and mistyped keys keep their one answer.
	other := []byte(key)
	other[10] ^= 1
	r = e.do(t, "POST", validatePath, "", validateBody(string(other), ""))
	is.Equal(r.raw, wantInvalidLicense)

	// Renewal: the key validates again, key.renewed, a later expiry is told again.
	r = e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"expiresAt":"2026-04-01T00:00:00Z"}`)
	is.Equal(r.status, 200)
	is.Equal(r.header.Get("Cache-Control"), "no-store")
	is.Equal(r.body["id"], id)
	is.Equal(r.body["expiresAt"], "2026-04-01T00:00:00+00:00")
	is.Equal(r.body["licenseKey"], key[:8]+"..."+key[56:]) // the key as the list shows it: masked
	is.Equal(keysOf(r.body), keysOf(e.listed(t, id)))
	renewed := e.eventsOf(licensing.EventKeyRenewed)
	is.Equal(len(renewed), 1)
	is.Equal(renewed[0].UserID, "user-1")
	is.Equal(renewed[0].ExpiresAt, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 200) // renewed: valid again
	is.Equal(r.body["expiresAt"], "2026-04-01T00:00:00+00:00")
	e.clock.Add(31 * 24 * time.Hour)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, "")).status, 401)
	is.Equal(len(e.eventsOf(licensing.EventKeyExpired)), 2) // the renewed key's expiry is told again

	// A past expiry through PATCH ends the key; null clears it.
	r = e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"expiresAt":null}`)
	is.Equal(r.status, 200)
	is.Equal(r.body["expiresAt"], nil)
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 200)
	_, has := r.body["expiresAt"]
	is.True(!has) // a key that never expires: the answer is as before expiry existed

	// A revoked key stays revoked and keeps the one answer, expired or not.
	is.Equal(e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"expiresAt":"2026-03-02T00:00:00Z"}`).status, 200)
	is.Equal(e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "").status, 200)
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.raw, wantInvalidLicense) // revoked, and past its expiry: the one answer
	r = e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"expiresAt":"2027-01-01T00:00:00Z"}`)
	is.Equal(r.status, 403)
	is.Equal(r.raw, wantRevoked)
}

// TestKeyExpirySignedAnswer: an expired key's 401 is signed when the
// request carries a nonce, with the nonce echoed after expiresAt.
func TestKeyExpirySignedAnswer(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.Signing = testSigning })
	r := e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2026-03-01T00:00:00Z"}`)
	is.Equal(r.status, 201)
	e.clock.Add(30 * 24 * time.Hour)
	r = e.do(t, "POST", validatePath, "", validateBody(r.body["licenseKey"].(string), `"nonce":"n-1"`))
	is.Equal(r.status, 401)
	is.Equal(r.raw, `{"valid":false,"error":"License key has expired","expiresAt":"2026-03-01T00:00:00+00:00","nonce":"n-1"}`+"\n")
	is.True(verifyAnswer(t, jwks(t, e), r)) // signed like every validate answer with a nonce
}

// TestOfflineTokenCappedAtKeyExpiry: a token never outlives its key, and an
// expired key gets none.
func TestOfflineTokenCappedAtKeyExpiry(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, func(c *licensing.Config) { c.Signing = testSigning })
	r := e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2026-03-01T00:00:00Z"}`)
	id := r.body["id"].(string)
	r = e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "")
	is.Equal(r.status, 200)
	is.Equal(r.body["expiresAt"], "2026-03-01T00:00:00+00:00") // not a year: the key's expiry
	_, claims := verifyJWT(t, jwks(t, e), r.body["jwt"].(string))
	is.Equal(claims["exp"], float64(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Unix()))

	never, _ := e.create(t, "t-owner", "never")
	r = e.do(t, "POST", keysPath+"/"+never+"/jwt", "t-owner", "")
	is.Equal(r.body["expiresAt"], "2027-02-20T10:30:00+00:00") // a key without expiry: the token lifetime

	e.clock.Add(10 * 24 * time.Hour)
	r = e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "")
	is.Equal(r.status, 403)
	is.Equal(r.body["error"], "License key has expired; renew it (set a later expiresAt) before issuing a token.")
}

// TestKeyRotation: rotating gives a new key once (201, the create answer
// plus rotatedFrom), which takes over the instance name and URL and the
// expiry; the old key validates until the overlap ends, then answers as
// expired; the list links both; a second rotation is a 409, rotating a
// revoked key a 403; revoking either key revokes only that key.
func TestKeyRotation(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	r := e.do(t, "POST", keysPath, "t-owner", `{"instanceName":"prod","expiresAt":"2026-12-31T00:00:00Z"}`)
	oldID, oldKey := r.body["id"].(string), r.body["licenseKey"].(string)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(oldKey, `"instanceUrl":"https://factura.example.ro"`)).status, 200)

	e.clock.Add(time.Hour)
	r = e.do(t, "POST", keysPath+"/"+oldID+"/rotate", "t-owner", "") // no body: the default overlap
	is.Equal(r.status, 201)
	is.Equal(r.header.Get("Cache-Control"), "no-store") // the one answer with the new full key
	is.Equal(keysOf(r.body), []string{"active", "createdAt", "expiresAt", "id", "instanceName", "licenseKey", "maxInstances", "rotatedFrom"})
	newID, newKey := r.body["id"].(string), r.body["licenseKey"].(string)
	is.True(fullKey.MatchString(newKey))
	is.True(newID != oldID)
	is.Equal(r.body["rotatedFrom"], oldID)
	is.Equal(r.body["instanceName"], "prod")                   // taken over
	is.Equal(r.body["expiresAt"], "2026-12-31T00:00:00+00:00") // taken over
	is.Equal(r.body["createdAt"], "2026-02-20T11:30:00+00:00")

	oldItem, newItem := e.listed(t, oldID), e.listed(t, newID)
	is.Equal(oldItem["rotatedTo"], newID)
	is.Equal(oldItem["rotatedFrom"], nil)
	is.Equal(oldItem["expiresAt"], "2026-02-27T11:30:00+00:00") // the end of 7 days' overlap
	is.Equal(newItem["rotatedFrom"], oldID)
	is.Equal(newItem["rotatedTo"], nil)
	is.Equal(newItem["instanceUrl"], "https://factura.example.ro") // taken over
	is.True(newItem["licenseKey"] != newKey)                       // masked in the list

	rotated := e.eventsOf(licensing.EventKeyRotated)
	is.Equal(len(rotated), 1)
	is.Equal(rotated[0].KeyID, oldID)
	is.Equal(rotated[0].RotatedTo, newID)
	is.Equal(rotated[0].UserID, "user-1")
	is.Equal(len(e.eventsOf(licensing.EventKeyCreated)), 2) // the new key was created

	r = e.do(t, "POST", validatePath, "", validateBody(newKey, ""))
	is.Equal(r.status, 200)
	is.Equal(r.body["expiresAt"], "2026-12-31T00:00:00+00:00")
	r = e.do(t, "POST", validatePath, "", validateBody(oldKey, ""))
	is.Equal(r.status, 200) // within the overlap
	is.Equal(r.body["expiresAt"], "2026-02-27T11:30:00+00:00")

	r = e.do(t, "POST", keysPath+"/"+oldID+"/rotate", "t-owner", `{"overlapHours":1}`)
	is.Equal(r.status, 409)
	is.Equal(r.raw, `{"error":"License key was already rotated"}`+"\n")

	e.clock.Add(7 * 24 * time.Hour) // the overlap is over
	r = e.do(t, "POST", validatePath, "", validateBody(oldKey, ""))
	is.Equal(r.status, 401)
	is.Equal(r.raw, `{"valid":false,"error":"License key has expired","expiresAt":"2026-02-27T11:30:00+00:00"}`+"\n")
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(newKey, "")).status, 200)

	// Revoking the new key leaves the old one as it was.
	is.Equal(e.do(t, "DELETE", keysPath+"/"+newID, "t-owner", "").status, 200)
	is.Equal(e.listed(t, oldID)["active"], true)
	is.Equal(e.do(t, "POST", keysPath+"/"+newID+"/rotate", "t-owner", "").raw, wantRevoked)
}

// TestKeyRotationOverlap: overlapHours 0 ends the old key now; an old key
// whose own expiry comes before the overlap's end keeps it; revoking the
// old key leaves the new one valid.
func TestKeyRotationOverlap(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	id, key := e.create(t, "t-owner", "a")
	r := e.do(t, "POST", keysPath+"/"+id+"/rotate", "t-owner", `{"overlapHours":0}`)
	is.Equal(r.status, 201)
	is.Equal(r.body["expiresAt"], nil) // the old key never expired: nor does the new one
	newKey := r.body["licenseKey"].(string)
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 401) // ended at once
	is.Equal(r.body["error"], "License key has expired")
	is.Equal(r.body["expiresAt"], "2026-02-20T10:30:00+00:00")
	is.Equal(e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "").status, 200)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(newKey, "")).status, 200) // revoking the old key leaves the new one

	r = e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2026-02-21T00:00:00Z"}`)
	id2 := r.body["id"].(string)
	r = e.do(t, "POST", keysPath+"/"+id2+"/rotate", "t-owner", `{"overlapHours":2160}`)
	is.Equal(r.status, 201)
	is.Equal(e.listed(t, id2)["expiresAt"], "2026-02-21T00:00:00+00:00") // its own expiry came first: kept
	is.Equal(r.body["expiresAt"], "2026-02-21T00:00:00+00:00")           // the new key takes it over; renew it with PATCH

	// An expired key is renewed before it is rotated: its new key would be born expired.
	e.clock.Add(24 * time.Hour)
	id3 := r.body["id"].(string)
	r = e.do(t, "POST", keysPath+"/"+id3+"/rotate", "t-owner", "")
	is.Equal(r.status, 403)
	is.Equal(r.body["error"], "License key has expired; renew it (set a later expiresAt) before rotating it.")
	is.Equal(e.listed(t, id3)["rotatedTo"], nil) // nothing changed
}

// TestKeyLifetimeThroughTheStoreInterface: on a store that is not the
// memory store (the validation reads it through Store.KeyByLookup, as on
// the file and PostgreSQL stores), an expiry and a rotation's end hold the
// same way.
func TestKeyLifetimeThroughTheStoreInterface(t *testing.T) {
	is := is.New(t)
	var store *countingStore
	e := newEnvHTTP(t, func(c *licensing.Config) {
		store = &countingStore{MemoryStore: c.Store.(*licensing.MemoryStore)}
		c.Store = store
	}, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	r := e.do(t, "POST", keysPath, "t-owner", `{"expiresAt":"2026-03-01T00:00:00Z"}`)
	is.Equal(r.status, 201)
	key := r.body["licenseKey"].(string)
	id, other := e.create(t, "t-owner", "rotated")
	is.Equal(e.do(t, "POST", keysPath+"/"+id+"/rotate", "t-owner", `{"overlapHours":1}`).status, 201)

	before := store.reads.Load()
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 200)
	is.Equal(r.body["expiresAt"], "2026-03-01T00:00:00+00:00")
	is.Equal(store.reads.Load(), before+1) // read through the Store interface
	e.clock.Add(9 * 24 * time.Hour)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(key, "")).raw, wantExpired)
	r = e.do(t, "POST", validatePath, "", validateBody(other, ""))
	is.Equal(r.status, 401)
	is.Equal(r.body["error"], "License key has expired") // the rotated key, past its hour
}

// TestKeyRotationConcurrent: owners rotating one key at once get one new
// key; every other call is a 409 and made no key.
func TestKeyRotationConcurrent(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	id, _ := e.create(t, "t-owner", "prod")
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { statuses <- e.do(t, "POST", keysPath+"/"+id+"/rotate", "t-owner", "").status })
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	is.Equal(count, map[int]int{201: 1, 409: n - 1}) // one rotation
	is.Equal(e.count(t), 2)                          // the old key and one new key
	is.Equal(len(e.eventsOf(licensing.EventKeyRotated)), 1)
}

// TestRotatedKeyRenewal: the old key of a rotation (the leaked one) still
// stops by itself: its expiry can be moved (a longer overlap, or an end
// sooner) but never to null nor past the longest overlap from now; the new
// key is renewed as any key.
func TestRotatedKeyRenewal(t *testing.T) {
	is := is.New(t)
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	oldID, oldKey := e.create(t, "t-owner", "prod")
	r := e.do(t, "POST", keysPath+"/"+oldID+"/rotate", "t-owner", `{"overlapHours":24}`)
	is.Equal(r.status, 201)
	newID := r.body["id"].(string)
	const wantRotatedExpiry = `{"error":"License key was already rotated; its expiresAt can be at most 90 days from now, not null"}` + "\n"

	for _, body := range []string{`{"expiresAt":null}`, `{"expiresAt":"2026-05-21T10:30:01Z"}`, `{"expiresAt":"2030-01-01T00:00:00Z"}`} {
		r = e.do(t, "PATCH", keysPath+"/"+oldID, "t-owner", body)
		is.Equal(r.status, 409)
		is.Equal(r.raw, wantRotatedExpiry)
	}
	is.Equal(e.listed(t, oldID)["expiresAt"], "2026-02-21T10:30:00+00:00") // unchanged
	is.Equal(len(e.eventsOf(licensing.EventKeyRenewed)), 0)

	r = e.do(t, "PATCH", keysPath+"/"+oldID, "t-owner", `{"expiresAt":"2026-05-21T10:30:00Z"}`) // the longest overlap: a customer needs more time
	is.Equal(r.status, 200)
	is.Equal(r.body["expiresAt"], "2026-05-21T10:30:00+00:00")
	r = e.do(t, "PATCH", keysPath+"/"+oldID, "t-owner", `{"expiresAt":"2026-02-20T10:30:00Z"}`) // or end it now
	is.Equal(r.status, 200)
	is.Equal(e.do(t, "POST", validatePath, "", validateBody(oldKey, "")).status, 401)

	r = e.do(t, "PATCH", keysPath+"/"+newID, "t-owner", `{"expiresAt":"2030-01-01T00:00:00Z"}`) // the new key is an ordinary key
	is.Equal(r.status, 200)
	r = e.do(t, "PATCH", keysPath+"/"+newID, "t-owner", `{"expiresAt":null}`)
	is.Equal(r.status, 200)
}

// rotatingStore rotates a key (once, through rotate) when SetKeyExpiry
// is called: a rotation that lands between a renewal's read of the key
// and its write.
type rotatingStore struct {
	*licensing.MemoryStore
	rotate func()
}

func (s *rotatingStore) SetKeyExpiry(ctx context.Context, id string, expiresAt time.Time) (licensing.Key, error) {
	if f := s.rotate; f != nil {
		s.rotate = nil
		f()
	}
	return s.MemoryStore.SetKeyExpiry(ctx, id, expiresAt)
}

// TestRotatedKeyRenewalRace: a renewal to never that a rotation overtakes
// does not leave the replaced key valid forever: it ends at most 90 days
// from now, and the owner is told (409).
func TestRotatedKeyRenewalRace(t *testing.T) {
	is := is.New(t)
	var store *rotatingStore
	e := newEnvHTTP(t, func(c *licensing.Config) {
		store = &rotatingStore{MemoryStore: c.Store.(*licensing.MemoryStore)}
		c.Store = store
	}, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	id, _ := e.create(t, "t-owner", "prod")
	store.rotate = func() {
		_, _, err := e.svc.RotateKey(context.Background(), licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}, id, time.Hour)
		is.NoErr(err)
	}
	r := e.do(t, "PATCH", keysPath+"/"+id, "t-owner", `{"expiresAt":null}`)
	is.Equal(r.status, 409)
	is.Equal(r.body["error"], "License key was already rotated; its expiresAt can be at most 90 days from now, not null")
	old := e.listed(t, id)
	is.True(old["rotatedTo"] != nil)
	is.Equal(old["expiresAt"], "2026-05-21T10:30:00+00:00") // bounded: it still stops by itself
}
