package licensing

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

// Bounds of the revocation lists kept in memory.
const (
	// revocationListTTL is how long a built list is served: a revocation
	// through this Service drops its organization's list at once, and one
	// made by another process sharing the store shows within this time.
	revocationListTTL = 10 * time.Second
	// maxRevocationLists and maxRevocationBytes bound the cache: past
	// either, other organizations' lists are dropped (and rebuilt when next
	// asked for).
	maxRevocationLists = 4096
	maxRevocationBytes = 64 << 20
)

// revocationList is an organization's revocation list, encoded once and
// served from memory until it changes.
type revocationList struct {
	ready chan struct{} // closed once built; the fields below are then read-only
	err   error
	// answer is the unsigned 200 body without a nonce: json.Marshal of
	// wire.RevocationList and a newline.
	answer []byte
	// etag is the strong entity tag of answer: a quoted base64url SHA-256
	// prefix.
	etag  string
	built time.Time
	// signed caches the signature of answer for one Licensing-Date
	// (httprevocations.go), so that a second's worth of requests is signed once.
	signed atomic.Pointer[signedAnswer]

	cached bool // in revocationCache.lists and counted in its bytes; guarded by its mu
}

// revocationCache holds the organizations' encoded revocation lists; each
// is built by one caller while concurrent callers for the same
// organization wait for it.
type revocationCache struct {
	mu    sync.Mutex
	lists map[string]*revocationList // pending and built
	bytes int                        // answer bytes of the cached lists
}

func newRevocationCache() *revocationCache {
	return &revocationCache{lists: map[string]*revocationList{}}
}

// remove drops org's list; callers hold c.mu.
func (c *revocationCache) remove(org string) {
	if l := c.lists[org]; l != nil {
		if l.cached {
			c.bytes -= len(l.answer)
			l.cached = false
		}
		delete(c.lists, org)
	}
}

// invalidate drops org's list (built or being built): a call that starts
// after invalidate returns builds a new one from the store.
func (c *revocationCache) invalidate(org string) {
	c.mu.Lock()
	c.remove(org)
	c.mu.Unlock()
}

// revocationList returns orgID's encoded revocation list: from memory when
// it was built less than revocationListTTL ago and no revocation in orgID
// went through this Service since; else built from the store (once for
// all concurrent callers). An organization without any key is not kept,
// so made-up organization ids cannot fill the cache.
func (s *Service) revocationList(ctx context.Context, orgID string) (*revocationList, error) {
	c := s.revocations
	now := s.now()
	c.mu.Lock()
	if l := c.lists[orgID]; l != nil {
		age := now.Sub(l.built)
		if !l.cached || (age >= 0 && age < revocationListTTL) { // pending, or fresh
			c.mu.Unlock()
			select {
			case <-l.ready:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if l.err != nil {
				return nil, l.err
			}
			return l, nil
		}
		c.remove(orgID)
	}
	l := &revocationList{ready: make(chan struct{}), built: now}
	c.lists[orgID] = l
	c.mu.Unlock()
	done := false
	defer func() {
		if done {
			return
		}
		// The store panicked: the callers waiting get an error and the
		// next caller builds anew, rather than all waiting for ever on a
		// list that never comes.
		l.err = &Error{Code: CodeInternal, Message: "Internal error."}
		c.mu.Lock()
		if c.lists[orgID] == l {
			delete(c.lists, orgID)
		}
		c.mu.Unlock()
		close(l.ready)
	}()

	// The build finishes for the callers waiting on it even if this one's
	// request goes away.
	ids, keys, err := s.revokedKeyIDs(context.WithoutCancel(ctx), orgID)
	if err == nil {
		var b []byte
		b, err = json.Marshal(wire.RevocationList{OrganizationID: orgID, Revoked: ids})
		if err != nil {
			err = wrapErr("encode revocation list", err)
		}
		l.answer = append(b, '\n')
		sum := sha256.Sum256(l.answer)
		l.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
	}
	l.err = err

	c.mu.Lock()
	if c.lists[orgID] == l { // not invalidated while it was built
		if err != nil || keys == 0 || len(l.answer) > maxRevocationBytes {
			delete(c.lists, orgID)
		} else {
			l.cached = true
			c.bytes += len(l.answer)
			for org, other := range c.lists {
				if len(c.lists) <= maxRevocationLists && c.bytes <= maxRevocationBytes {
					break
				}
				if other != l && other.cached {
					c.remove(org)
				}
			}
		}
	}
	c.mu.Unlock()
	done = true
	close(l.ready)
	return l, err
}
