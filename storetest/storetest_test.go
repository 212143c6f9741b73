package storetest_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/docsnippet"
	"github.com/licensekit/licensing/storetest"
)

// openEmptyStore is the store under test: here the memory store.
func openEmptyStore(t *testing.T) licensing.Store { return licensing.NewMemoryStore() }

// TestConformance is the package doc's code, line for line: the memory
// store passes the suite.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) licensing.Store { return openEmptyStore(t) })
}

// TestPackageDocCompiles: the Go code of the package doc is code that this
// package's tests compile (TestConformance).
func TestPackageDocCompiles(t *testing.T) {
	docsnippet.Check(t, ".")
}

// brokenEnv names, in the environment of a child process of
// TestRunCatchesBrokenStores, the bug its store has.
const brokenEnv = "STORETEST_BROKEN"

// TestRunCatchesBrokenStores runs the suite, in a child process each, on
// a small store with one bug switched on, and checks that the suite fails
// on every bug; with no bug the same store passes. (Each child is a whole
// run of the suite: its failures cannot be caught inside this process.)
func TestRunCatchesBrokenStores(t *testing.T) {
	if bug := os.Getenv(brokenEnv); bug != "" {
		storetest.Run(t, func(t *testing.T) licensing.Store { return newRefStore(bug) })
		return
	}
	for _, bug := range append([]string{"none"}, refStoreBugs...) {
		t.Run(bug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRunCatchesBrokenStores$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), brokenEnv+"="+bug)
			out, err := cmd.CombinedOutput()
			var failed []string // the suite's cases that failed
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) >= 3 && f[0] == "---" && f[1] == "FAIL:" {
					if name := strings.Split(f[2], "/"); len(name) == 2 {
						failed = append(failed, name[1])
					}
				}
			}
			switch {
			case bug == "none" && err != nil:
				t.Fatalf("the store without bugs fails the suite: %v\n%s", err, out)
			case bug != "none" && err == nil:
				t.Fatalf("the suite passes a store with the bug %q", bug)
			case bug != "none":
				if len(failed) == 0 {
					t.Fatalf("the suite fails on the bug %q, but in no case of its own:\n%s", bug, out)
				}
				t.Logf("caught by %s", strings.Join(failed, ", "))
			}
		})
	}
}

// refStoreBugs are the bugs refStore can have, each a way a real store
// could get the contract wrong.
var refStoreBugs = []string{
	"rotate-stores-new-key-before-checks", // a refused rotation leaves the new key
	"rotate-updates-old-key-first",        // a rotation refused for a clash leaves the old key changed
	"rotate-unlocked-between-check-and-write",
	"rotate-end-always-overlap",     // the old key's expiry is oldEndsAt even when it was earlier
	"rotate-end-later-of-the-two",   // the min rule upside down
	"rotate-zero-end-is-never",      // a zero oldEndsAt makes the old key never expire
	"rotate-fields-not-taken-over",  // the new key keeps its own instance fields and expiry
	"rotate-keeps-new-rotated-from", // RotatedFrom as newKey carried it
	"rotate-revoked",                // a revoked key is rotated
	"rotate-twice",                  // a rotated key is rotated again
	"expiry-of-revoked-key",         // SetKeyExpiry renews a revoked key
	"expiry-clears-rotation",        // SetKeyExpiry drops the old key's link
	"expiry-malformed-id-invalid",   // SetKeyExpiry answers ErrInvalidKeyID for a malformed id
	"expiry-out-of-range-kept",      // an expiry outside ValidExpiry is stored
	"lifetime-fields-not-stored",    // CreateKey drops ExpiresAt, RotatedTo, RotatedFrom
	"lifetime-returns-shared-maps",  // what SetKeyExpiry and RotateKey return shares the store's maps
	"rotate-keeps-callers-maps",     // the new key's maps are the caller's
	"validation-clears-lifetime",    // a validation record resets ExpiresAt
}

// refStore is a small, plain store (a map under one mutex) that passes the
// suite, with one of refStoreBugs switched on by name.
type refStore struct {
	bug  string
	mu   sync.Mutex
	keys map[string]*licensing.Key
}

var _ licensing.Store = (*refStore)(nil)

func newRefStore(bug string) *refStore {
	return &refStore{bug: bug, keys: map[string]*licensing.Key{}}
}

// copyKey returns k with copies of its maps and slices, unless the bug
// says otherwise and shared is set.
func (s *refStore) copyKey(k *licensing.Key, shared bool) licensing.Key {
	c := *k
	if shared && s.bug == "lifetime-returns-shared-maps" {
		return c
	}
	c.LastMetrics, c.LastViolations = maps.Clone(k.LastMetrics), slices.Clone(k.LastViolations)
	return c
}

func (s *refStore) byLookup(lookup string) *licensing.Key {
	for _, k := range s.keys {
		if k.LookupValue == lookup {
			return k
		}
	}
	return nil
}

func (s *refStore) insertLocked(k licensing.Key, callers bool) error {
	if !licensing.ValidKeyID(k.ID) {
		return licensing.ErrInvalidKeyID
	}
	if !licensing.ValidExpiry(k.ExpiresAt) && s.bug != "expiry-out-of-range-kept" {
		return licensing.ErrInvalidExpiry
	}
	if s.keys[k.ID] != nil || s.byLookup(k.LookupValue) != nil {
		return licensing.ErrDuplicateKey
	}
	if !callers {
		k = s.copyKey(&k, false)
	}
	if s.bug == "lifetime-fields-not-stored" {
		k.ExpiresAt, k.RotatedTo, k.RotatedFrom = time.Time{}, "", ""
	}
	k.ExpiresAt = utc(k.ExpiresAt)
	s.keys[k.ID] = &k
	return nil
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Round(0)
}

func (s *refStore) CreateKey(ctx context.Context, k licensing.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.insertLocked(k, false)
}

func (s *refStore) KeyByID(ctx context.Context, id string) (licensing.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[id]; k != nil {
		return s.copyKey(k, false), nil
	}
	return licensing.Key{}, licensing.ErrKeyNotFound
}

func (s *refStore) KeyByLookup(ctx context.Context, lookup string) (licensing.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.byLookup(lookup); k != nil {
		return s.copyKey(k, false), nil
	}
	return licensing.Key{}, licensing.ErrKeyNotFound
}

func (s *refStore) ListKeys(ctx context.Context, orgID string, after licensing.KeyCursor, limit int) ([]licensing.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	newer := func(a, b licensing.KeyCursor) bool { // a lists before b
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.ID > b.ID
	}
	keys := []licensing.Key{}
	for _, k := range s.keys {
		if k.OrganizationID == orgID && (after.IsZero() || newer(after, k.Cursor())) {
			keys = append(keys, s.copyKey(k, false))
		}
	}
	slices.SortFunc(keys, func(a, b licensing.Key) int {
		if newer(a.Cursor(), b.Cursor()) {
			return -1
		}
		return 1
	})
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	return keys, nil
}

func (s *refStore) RevokeKey(ctx context.Context, id string, at time.Time) (licensing.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	if k == nil {
		return licensing.Key{}, licensing.ErrKeyNotFound
	}
	if k.Active {
		k.Active, k.RevokedAt = false, at
	}
	return s.copyKey(k, false), nil
}

func (s *refStore) RecordValidations(ctx context.Context, recs []licensing.ValidationRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if k := s.keys[r.KeyID]; k != nil {
			r.Metrics, r.Violations = maps.Clone(r.Metrics), slices.Clone(r.Violations)
			k.ApplyValidation(r)
			if s.bug == "validation-clears-lifetime" {
				k.ExpiresAt = time.Time{}
			}
		}
	}
	return nil
}

func (s *refStore) SetKeyExpiry(ctx context.Context, id string, expiresAt time.Time) (licensing.Key, error) {
	if !licensing.ValidExpiry(expiresAt) && s.bug != "expiry-out-of-range-kept" {
		return licensing.Key{}, licensing.ErrInvalidExpiry
	}
	if !licensing.ValidKeyID(id) && s.bug == "expiry-malformed-id-invalid" {
		return licensing.Key{}, licensing.ErrInvalidKeyID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	switch {
	case k == nil:
		return licensing.Key{}, licensing.ErrKeyNotFound
	case !k.Active && s.bug != "expiry-of-revoked-key":
		return licensing.Key{}, licensing.ErrKeyRevoked
	}
	k.ExpiresAt = utc(expiresAt)
	if s.bug == "expiry-clears-rotation" {
		k.RotatedTo = ""
	}
	return s.copyKey(k, true), nil
}

func (s *refStore) RotateKey(ctx context.Context, oldID string, newKey licensing.Key, oldEndsAt time.Time) (licensing.Key, error) {
	if !licensing.ValidExpiry(oldEndsAt) && s.bug != "expiry-out-of-range-kept" {
		return licensing.Key{}, licensing.ErrInvalidExpiry
	}
	s.mu.Lock()
	defer func() { s.mu.Unlock() }()
	old := s.keys[oldID]
	if s.bug == "rotate-stores-new-key-before-checks" && old != nil {
		newKey.RotatedFrom = oldID
		s.insertLocked(newKey, false)
	}
	switch {
	case old == nil:
		return licensing.Key{}, licensing.ErrKeyNotFound
	case !old.Active && s.bug != "rotate-revoked":
		return licensing.Key{}, licensing.ErrKeyRevoked
	case old.RotatedTo != "" && s.bug != "rotate-twice":
		return licensing.Key{}, licensing.ErrKeyRotated
	}
	if s.bug == "rotate-unlocked-between-check-and-write" {
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
	}
	ends := old.ExpiresAt // the earlier of the two, zero being never
	switch s.bug {
	case "rotate-end-always-overlap":
		ends = oldEndsAt
	case "rotate-end-later-of-the-two":
		if oldEndsAt.After(ends) {
			ends = oldEndsAt
		}
	case "rotate-zero-end-is-never":
		if oldEndsAt.IsZero() || ends.IsZero() || oldEndsAt.Before(ends) {
			ends = oldEndsAt
		}
	default:
		if !oldEndsAt.IsZero() && (ends.IsZero() || oldEndsAt.Before(ends)) {
			ends = oldEndsAt
		}
	}
	oldBefore := *old
	if s.bug == "rotate-updates-old-key-first" {
		old.RotatedTo, old.ExpiresAt = newKey.ID, utc(ends)
	}
	if s.bug != "rotate-keeps-new-rotated-from" {
		newKey.RotatedFrom = oldID
	}
	newKey.RotatedTo = ""
	if s.bug != "rotate-fields-not-taken-over" {
		newKey.InstanceName, newKey.InstanceURL, newKey.ExpiresAt = old.InstanceName, old.InstanceURL, oldBefore.ExpiresAt
	}
	if err := s.insertLocked(newKey, s.bug == "rotate-keeps-callers-maps"); err != nil {
		return licensing.Key{}, err
	}
	old.RotatedTo, old.ExpiresAt = newKey.ID, utc(ends)
	return s.copyKey(old, true), nil
}

// Instances: to be written with the suite's instance checks (issue 19).
func (s *refStore) SetMaxInstances(ctx context.Context, id string, n int) (licensing.Key, error) {
	return licensing.Key{}, errors.New("refStore: instances not written yet")
}

func (s *refStore) SeatInstance(ctx context.Context, keyID string, inst licensing.Instance, limit int, lease time.Duration) (int, bool, error) {
	return 0, false, errors.New("refStore: instances not written yet")
}

func (s *refStore) Instances(ctx context.Context, keyID string, now time.Time, lease time.Duration) ([]licensing.Instance, error) {
	return nil, errors.New("refStore: instances not written yet")
}

func (s *refStore) ReleaseInstance(ctx context.Context, keyID, instanceID string) error {
	return errors.New("refStore: instances not written yet")
}
