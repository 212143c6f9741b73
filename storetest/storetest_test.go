package storetest_test

import (
	"context"
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

	"max-instances-not-stored",              // CreateKey drops MaxInstances
	"max-instances-range-unchecked",         // a MaxInstances outside 0..MaxInstancesLimit is stored
	"max-instances-checked-first",           // ErrInvalidMaxInstances before ErrInvalidKeyID and ErrInvalidExpiry
	"max-instances-of-revoked-key",          // SetMaxInstances changes a revoked key
	"rotate-keeps-new-max-instances",        // the new key keeps the MaxInstances it carried
	"rotate-copies-instances",               // the old key's instances hold seats on the new key
	"seat-missing-key",                      // SeatInstance of a missing key seats it
	"seat-limit-off-by-one",                 // one instance more than the limit gets a seat
	"seat-limit-changes-state",              // a refused instance still touches the key's instances
	"seat-unlocked-between-check-and-write", // two instances racing for the last seat both win
	"seat-first-seen-from-caller",           // FirstSeenAt as the caller gave it
	"seat-keeps-callers-map",                // a new instance's metrics are the caller's map
	"seat-moves-last-seen-back",             // an earlier sighting sets LastSeenAt
	"seat-update-clears-name",               // a sighting without a name clears it
	"lapsed-instance-keeps-seat",            // an instance whose lease ran out takes its seat back past the limit
	"lease-not-pruned",                      // instances whose lease ran out keep their seats
	"lease-boundary-inclusive",              // an instance seen exactly lease ago keeps its seat
	"unlimited-key-unbounded",               // a key without a limit keeps more than MaxInstancesLimit
	"unlimited-key-forgets-newest",          // the bound forgets the most recently seen instance
	"instances-nil-when-none",               // Instances of a key without any is nil
	"instances-unordered",                   // Instances not most recently seen first
	"instances-share-maps",                  // Instances returns the store's metrics maps
	"release-keeps-seat",                    // ReleaseInstance answers nil and frees nothing
	"release-missing-is-nil",                // releasing an unknown instance is not ErrInstanceNotFound
	"release-ignores-case",                  // ReleaseInstance matches ids in another case
	"validation-ignores-instance",           // a record with InstanceID leaves the instance alone
	"validation-adds-instance",              // a record with an unknown InstanceID adds an instance
	"validation-moves-last-seen-back",       // an earlier record sets LastSeenAt
}

// refStore is a small, plain store (a map under one mutex) that passes the
// suite, with one of refStoreBugs switched on by name.
type refStore struct {
	bug       string
	mu        sync.Mutex
	keys      map[string]*licensing.Key
	instances map[string][]licensing.Instance // by key id, in no order
}

var _ licensing.Store = (*refStore)(nil)

func newRefStore(bug string) *refStore {
	return &refStore{bug: bug, keys: map[string]*licensing.Key{}, instances: map[string][]licensing.Instance{}}
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
	badMax := k.MaxInstances < 0 || k.MaxInstances > licensing.MaxInstancesLimit
	if badMax && s.bug == "max-instances-checked-first" {
		return licensing.ErrInvalidMaxInstances
	}
	if !licensing.ValidKeyID(k.ID) {
		return licensing.ErrInvalidKeyID
	}
	if !licensing.ValidExpiry(k.ExpiresAt) && s.bug != "expiry-out-of-range-kept" {
		return licensing.ErrInvalidExpiry
	}
	if badMax && s.bug != "max-instances-range-unchecked" {
		return licensing.ErrInvalidMaxInstances
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
	if s.bug == "max-instances-not-stored" {
		k.MaxInstances = 0
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
			if r.InstanceID != "" && s.bug != "validation-ignores-instance" {
				s.recordInstanceLocked(r)
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
	if s.bug != "rotate-keeps-new-max-instances" {
		newKey.MaxInstances = old.MaxInstances
	}
	if err := s.insertLocked(newKey, s.bug == "rotate-keeps-callers-maps"); err != nil {
		return licensing.Key{}, err
	}
	old.RotatedTo, old.ExpiresAt = newKey.ID, utc(ends)
	if s.bug == "rotate-copies-instances" {
		s.instances[newKey.ID] = s.copyInstances(s.instances[oldID])
	}
	return s.copyKey(old, true), nil
}

// recordInstanceLocked applies r to the instance it names, if its key has
// it.
func (s *refStore) recordInstanceLocked(r licensing.ValidationRecord) {
	list := s.instances[r.KeyID]
	i := slices.IndexFunc(list, func(in licensing.Instance) bool { return in.ID == r.InstanceID })
	if i < 0 {
		if s.bug == "validation-adds-instance" {
			s.instances[r.KeyID] = append(list, licensing.Instance{ID: r.InstanceID, FirstSeenAt: r.At, LastSeenAt: r.At})
		}
		return
	}
	in := &list[i]
	if r.At.After(in.LastSeenAt) || s.bug == "validation-moves-last-seen-back" {
		in.LastSeenAt = r.At
	}
	if r.InstanceName != "" {
		in.Name = r.InstanceName
	}
	if r.InstanceURL != "" {
		in.URL = r.InstanceURL
	}
	if r.Metrics != nil {
		in.Metrics = r.Metrics // cloned by RecordValidations
	}
}

// copyInstances returns copies of list's instances, unless the bug says
// otherwise.
func (s *refStore) copyInstances(list []licensing.Instance) []licensing.Instance {
	out := slices.Clone(list)
	if s.bug == "instances-share-maps" {
		return out
	}
	for i := range out {
		out[i].Metrics = maps.Clone(out[i].Metrics)
	}
	return out
}

func (s *refStore) SetMaxInstances(ctx context.Context, id string, n int) (licensing.Key, error) {
	if (n < 0 || n > licensing.MaxInstancesLimit) && s.bug != "max-instances-range-unchecked" {
		return licensing.Key{}, licensing.ErrInvalidMaxInstances
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	switch {
	case k == nil:
		return licensing.Key{}, licensing.ErrKeyNotFound
	case !k.Active && s.bug != "max-instances-of-revoked-key":
		return licensing.Key{}, licensing.ErrKeyRevoked
	}
	k.MaxInstances = n
	return s.copyKey(k, false), nil
}

// seated reports whether in holds a seat at now.
func (s *refStore) seated(in licensing.Instance, now time.Time, lease time.Duration) bool {
	switch s.bug {
	case "lease-not-pruned":
		return true
	case "lease-boundary-inclusive":
		return now.Sub(in.LastSeenAt) <= lease
	}
	return now.Sub(in.LastSeenAt) < lease
}

func (s *refStore) SeatInstance(ctx context.Context, keyID string, inst licensing.Instance, limit int, lease time.Duration) (int, bool, error) {
	s.mu.Lock()
	defer func() { s.mu.Unlock() }()
	if s.keys[keyID] == nil {
		if s.bug != "seat-missing-key" {
			return 0, false, licensing.ErrKeyNotFound
		}
		s.keys[keyID] = &licensing.Key{ID: keyID}
	}
	now := inst.LastSeenAt
	var live []licensing.Instance
	found := -1
	for _, in := range s.instances[keyID] {
		switch {
		case in.ID == inst.ID && (s.seated(in, now, lease) || s.bug == "lapsed-instance-keeps-seat"):
			found = len(live)
			live = append(live, in)
		case s.seated(in, now, lease):
			live = append(live, in)
		}
	}
	if found >= 0 {
		have := &live[found]
		if now.After(have.LastSeenAt) || s.bug == "seat-moves-last-seen-back" {
			have.LastSeenAt = now
		}
		if inst.Name != "" || s.bug == "seat-update-clears-name" {
			have.Name = inst.Name
		}
		if inst.URL != "" {
			have.URL = inst.URL
		}
		if inst.Metrics != nil {
			have.Metrics = maps.Clone(inst.Metrics)
		}
		s.instances[keyID] = live
		return len(live), false, nil
	}
	full := limit > 0 && len(live) >= limit
	if s.bug == "seat-limit-off-by-one" {
		full = limit > 0 && len(live) > limit
	}
	if full {
		if s.bug == "seat-limit-changes-state" {
			live[0].LastSeenAt = now
			s.instances[keyID] = live
		}
		return len(live), false, licensing.ErrSeatLimit
	}
	if s.bug == "seat-unlocked-between-check-and-write" {
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
		s.mu.Lock()
		live = append(live[:0:0], live...)
	}
	if len(live) >= licensing.MaxInstancesLimit && s.bug != "unlimited-key-unbounded" {
		drop := 0 // the least recently seen
		for i := range live {
			older := live[i].LastSeenAt.Before(live[drop].LastSeenAt)
			if s.bug == "unlimited-key-forgets-newest" {
				older = live[i].LastSeenAt.After(live[drop].LastSeenAt)
			}
			if older {
				drop = i
			}
		}
		live = slices.Delete(live, drop, drop+1)
	}
	if s.bug != "seat-first-seen-from-caller" {
		inst.FirstSeenAt = now
	}
	if s.bug != "seat-keeps-callers-map" {
		inst.Metrics = maps.Clone(inst.Metrics)
	}
	if s.bug == "seat-unlocked-between-check-and-write" {
		live = append(s.instances[keyID], inst) // what the others added meanwhile, and this one
		s.instances[keyID] = live
		return len(live), true, nil
	}
	s.instances[keyID] = append(live, inst)
	return len(live) + 1, true, nil
}

func (s *refStore) Instances(ctx context.Context, keyID string, now time.Time, lease time.Duration) ([]licensing.Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys[keyID] == nil {
		return nil, licensing.ErrKeyNotFound
	}
	var out []licensing.Instance
	if s.bug != "instances-nil-when-none" {
		out = []licensing.Instance{}
	}
	for _, in := range s.copyInstances(s.instances[keyID]) {
		if s.seated(in, now, lease) {
			out = append(out, in)
		}
	}
	if s.bug != "instances-unordered" {
		slices.SortFunc(out, func(a, b licensing.Instance) int {
			if c := b.LastSeenAt.Compare(a.LastSeenAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
	return out, nil
}

func (s *refStore) ReleaseInstance(ctx context.Context, keyID, instanceID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys[keyID] == nil {
		return licensing.ErrKeyNotFound
	}
	list := s.instances[keyID]
	i := slices.IndexFunc(list, func(in licensing.Instance) bool {
		if s.bug == "release-ignores-case" {
			return strings.EqualFold(in.ID, instanceID)
		}
		return in.ID == instanceID
	})
	switch {
	case i < 0 && s.bug == "release-missing-is-nil":
		return nil
	case i < 0:
		return licensing.ErrInstanceNotFound
	case s.bug == "release-keeps-seat":
		return nil
	}
	s.instances[keyID] = slices.Delete(list, i, i+1)
	return nil
}
