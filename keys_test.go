package licensing_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/matryer/is"
)

// The full key is in the 201 body and nowhere in the store or the events.
func TestFullKeyIsNeverStored(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	var keys []string
	for i := 0; i < 20; i++ {
		_, k := e.create(t, "t-owner", fmt.Sprint("instance ", i))
		keys = append(keys, k)
		e.do(t, "POST", validatePath, "", validateBody(k, `"instanceId":"x`+fmt.Sprint(i%2)+`"`))
	}
	is.Equal(e.count(t), 20)
	var dump strings.Builder
	stored, err := e.store.ListKeys(context.Background(), "org-1", licensing.KeyCursor{}, 0)
	is.NoErr(err)
	for _, k := range stored {
		fmt.Fprintf(&dump, "%#v\n", k)
	}
	e.mu.Lock()
	fmt.Fprintf(&dump, "%#v\n", e.events)
	e.mu.Unlock()
	list := e.do(t, "GET", keysPath, "t-owner", "").raw
	for _, k := range keys {
		middle := k[8:56] // what the masked form hides
		for _, s := range []string{dump.String(), list} {
			is.True(!strings.Contains(s, k))                         // no full key
			is.True(!strings.Contains(s, middle))                    // not even its hidden part
			is.True(!strings.Contains(strings.ToLower(s), k[20:40])) // nor a piece of it
		}
	}
}

func TestListKeys(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	r := e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 200)
	is.Equal(r.raw, `{"organizationId":"org-1","organizationName":"SC Firma Mea SRL","keys":[]}`+"\n") // empty organization, named

	id1, k1 := e.create(t, "t-owner", "First")
	e.clock.Add(time.Minute)
	id2, k2 := e.create(t, "t-owner", "Second")
	r = e.do(t, "GET", keysPath, "t-owner", "")
	is.Equal(r.status, 200)
	is.Equal(r.header.Get("Cache-Control"), "no-store")
	keys := r.body["keys"].([]any)
	is.Equal(len(keys), 2)
	first, second := keys[0].(map[string]any), keys[1].(map[string]any)
	is.Equal(first["id"], id2) // newest first
	is.Equal(second["id"], id1)
	is.Equal(first["licenseKey"], k2[:8]+"..."+k2[56:]) // masked
	is.Equal(second["licenseKey"], k1[:8]+"..."+k1[56:])
	is.Equal(keysOf(first), []string{"activatedAt", "active", "createdAt", "expiresAt", "id", "instanceMetrics", "instanceName",
		"instanceUrl", "lastValidatedAt", "lastViolations", "licenseKey", "maxInstances", "rotatedFrom", "rotatedTo"})
	is.Equal(first["expiresAt"], nil)   // never expires
	is.Equal(first["rotatedTo"], nil)   // not rotated
	is.Equal(first["rotatedFrom"], nil) // not a rotation's new key
	is.Equal(first["instanceUrl"], nil)
	is.Equal(first["lastValidatedAt"], nil)
	is.Equal(first["activatedAt"], nil)
	is.Equal(first["createdAt"], "2026-02-20T10:31:00+00:00")
	is.True(!strings.Contains(r.raw, k1) && !strings.Contains(r.raw, k2)) // no full key in a list

	r = e.do(t, "GET", keysPath, "t-member", "")
	is.Equal(r.status, 403) // members cannot list
}

func TestRevokeKey(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, key := e.create(t, "t-owner", "prod")
	r := e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 200)

	for _, path := range []string{keysPath + "/not-a-uuid", keysPath + "/019c8a12-4567-7abc-8ef0-123456789abc",
		keysPath + "/urn:uuid:" + id} {
		r = e.do(t, "DELETE", path, "t-owner", "")
		is.Equal(r.status, 404)
		is.Equal(r.raw, `{"error":"License key not found"}`+"\n") // one answer for every miss
	}
	// another organization's owner gets the same 404, even with a valid id
	e.orgs.update("org-2", func(o *licensing.Organization) { o.Features = map[string]any{"selfHostingLicense": true} })
	r = e.do(t, "DELETE", keysPath+"/"+id, "t-other", "")
	is.Equal(r.status, 404)
	is.Equal(r.raw, `{"error":"License key not found"}`+"\n")

	r = e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "")
	is.Equal(r.status, 200)
	is.Equal(r.raw, `{"status":"revoked"}`+"\n")
	r = e.do(t, "POST", validatePath, "", validateBody(key, ""))
	is.Equal(r.status, 401) // a revoked key fails at once
	r = e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "")
	is.Equal(r.status, 200) // idempotent
	is.Equal(len(e.eventsOf(licensing.EventKeyRevoked)), 1)

	r = e.do(t, "GET", keysPath, "t-owner", "")
	k := r.body["keys"].([]any)[0].(map[string]any)
	is.Equal(k["active"], false) // soft delete: listed, inactive
}

func TestOwnerCanListAndRevokeAfterDowngrade(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, _ := e.create(t, "t-owner", "prod")
	e.orgs.update("org-1", func(o *licensing.Organization) {
		o.Active = false
		o.Plan, o.Features = "free", map[string]any{}
	})
	is.Equal(e.do(t, "GET", keysPath, "t-owner", "").status, 200)
	is.Equal(e.do(t, "DELETE", keysPath+"/"+id, "t-owner", "").status, 200)
	is.Equal(e.do(t, "POST", keysPath, "t-owner", "").status, 403) // but no new credential
}

func TestRevokeRacesValidation(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	id, key := e.create(t, "t-owner", "prod")
	ctx := context.Background()
	actor := licensing.Actor{UserID: "user-1", OrganizationID: "org-1"}
	var revoked atomic.Bool
	var lateSuccesses, successes atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := revoked.Load() // read before the call starts
				_, err := e.svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: key})
				if err == nil {
					successes.Add(1)
					if after {
						lateSuccesses.Add(1)
					}
				}
			}
		}()
	}
	for successes.Load() < 100 {
		time.Sleep(time.Millisecond)
	}
	is.NoErr(e.svc.RevokeKey(ctx, actor, id))
	revoked.Store(true)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	is.Equal(lateSuccesses.Load(), int64(0)) // after the revoke returns, no validation succeeds
}
