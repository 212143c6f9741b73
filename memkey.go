package licensing

import (
	"encoding/hex"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
)

// memKeys holds a MemoryStore's keys without a pointer per key, so that a
// store of millions of keys costs the garbage collector a few large
// objects to mark at each cycle, not millions of small ones: the keys sit
// in fixed-size chunks of memKey (which holds no pointer), their strings in
// two arenas, and the indexes name a key by its number in the chunks. Only
// the rarely set fields with maps and slices (extras) hold pointers, one
// entry per key that has them. Keys are never removed. The MemoryStore's
// lock guards it.
type memKeys struct {
	chunks [][]memKey  // key i is chunks[i/keyChunk][i%keyChunk]; chunks never move
	n      uint32      // keys held
	fixed  stringArena // each key's id, lookup value, digest and masked key, which never change
	inst   stringArena // each key's instance name and URL, written again when they change
	stale  int         // bytes of inst that no key refers to any more
	old    stringArena // the instance arena a compaction is moving keys from, to inst
	moved  uint32      // keys [0, moved) hold no reference to old
	extras []memExtra  // extras[i-1] belongs to the key whose extra is i
	orgs   []string    // interned organization ids; a key's org indexes it
	orgIx  map[string]uint32
}

// keyChunk is the number of keys in a chunk.
const keyChunk = 4096

// memKey is a Key in a form that holds no pointer: its strings live in
// the arenas of its memKeys, its times are UnixNano, and the rarely set
// fields hang off memKeys.extras.
type memKey struct {
	id        uuid.UUID
	fixed     arenaRef // id (idLen) | lookup | digest (unless equal to lookup) | masked
	inst      arenaRef // instance name | instance URL
	lookupEnd uint32   // ends within fixed; digestEnd == lookupEnd: the digest is the lookup value
	digestEnd uint32
	nameEnd   uint32 // end of the name within inst
	self      uint32 // this key's number in memKeys
	org       uint32 // index in memKeys.orgs
	extra     uint32 // index+1 in memKeys.extras; 0: none

	created, activated, validated, revoked int64 // UnixNano; 0 is the zero time
	expires                                int64 // UnixNano; 0: never
	active                                 bool
	// noViolations: LastViolations is empty, not nil, unless extras holds
	// some. Every record of a valid key says so (ValidationResult.Violations
	// is never nil), so it is kept here, not in an extra for each key.
	noViolations bool
}

// idLen is the length of a key id in canonical form, the start of fixed.
const idLen = 36

type memExtra struct {
	metrics                map[string]float64
	violations             []string // nil or not empty (see memKey.noViolations)
	rotatedTo, rotatedFrom string
	maxInstances           int
}

// at returns key i.
func (s *memKeys) at(i uint32) *memKey { return &s.chunks[i/keyChunk][i%keyChunk] }

// add stores k (whose id is id) and returns its record.
func (s *memKeys) add(id uuid.UUID, k Key) *memKey {
	if s.n%keyChunk == 0 {
		s.chunks = append(s.chunks, make([]memKey, keyChunk))
	}
	p := s.at(s.n)
	*p = memKey{id: id, self: s.n, org: s.intern(k.OrganizationID), active: k.Active,
		created: nanos(k.CreatedAt), activated: nanos(k.ActivatedAt),
		validated: nanos(k.LastValidatedAt), revoked: nanos(k.RevokedAt), expires: nanos(k.ExpiresAt)}
	s.n++
	digest := k.Digest
	if digest == k.LookupValue {
		digest = ""
	}
	var idStr [idLen]byte
	hexUUID(idStr[:], id)
	p.fixed = s.fixed.add(string(idStr[:]), k.LookupValue, digest, k.MaskedKey)
	p.lookupEnd = idLen + uint32(len(k.LookupValue))
	p.digestEnd = p.lookupEnd + uint32(len(digest))
	s.setInstance(p, k.InstanceName, k.InstanceURL)
	p.noViolations = k.LastViolations != nil && len(k.LastViolations) == 0
	if k.LastMetrics != nil || len(k.LastViolations) > 0 || k.RotatedTo != "" || k.RotatedFrom != "" || k.MaxInstances != 0 {
		var violations []string
		if len(k.LastViolations) > 0 {
			violations = slices.Clone(k.LastViolations)
		}
		s.setExtra(p, memExtra{metrics: maps.Clone(k.LastMetrics), violations: violations,
			rotatedTo: s.str(k.RotatedTo), rotatedFrom: s.str(k.RotatedFrom), maxInstances: k.MaxInstances})
	}
	return p
}

// noViolations is the LastViolations of a key whose memKey.noViolations is
// set. Readers must not change it (appending to it makes a new array).
var noViolations = []string{}

// violations returns p's LastViolations, without copying them: the caller
// must not change them.
func (s *memKeys) violations(p *memKey) []string {
	if p.extra != 0 {
		if v := s.extras[p.extra-1].violations; v != nil {
			return v
		}
	}
	if p.noViolations {
		return noViolations
	}
	return nil
}

// setViolations makes a copy of v, which is not nil, p's LastViolations;
// an empty v takes no extra.
func (s *memKeys) setViolations(p *memKey, v []string) {
	p.noViolations = len(v) == 0
	if len(v) > 0 {
		e := s.extraOf(p)
		e.violations = slices.Clone(v)
		s.setExtra(p, e)
	} else if p.extra != 0 {
		s.extras[p.extra-1].violations = nil // its readers hold the slice, not the entry
	}
}

// intern returns the index of organization id org.
func (s *memKeys) intern(org string) uint32 {
	if i, ok := s.orgIx[org]; ok {
		return i
	}
	if s.orgIx == nil {
		s.orgIx = map[string]uint32{}
	}
	org = s.str(org)
	i := uint32(len(s.orgs))
	s.orgs = append(s.orgs, org)
	s.orgIx[org] = i
	return i
}

// str returns a copy of v in the fixed arena: a string the store keeps
// must not keep its caller's allocation alive (a file store's decoder cuts
// a key's strings from one string of its record), nor be an object of its
// own for the collector.
func (s *memKeys) str(v string) string { return s.fixed.get(s.fixed.add(v)) }

func (s *memKeys) idString(p *memKey) string { return s.fixed.get(p.fixed)[:idLen] }

func (s *memKeys) lookup(p *memKey) string { return s.fixed.get(p.fixed)[idLen:p.lookupEnd] }

func (s *memKeys) digest(p *memKey) string {
	if p.digestEnd == p.lookupEnd {
		return s.lookup(p)
	}
	return s.fixed.get(p.fixed)[p.lookupEnd:p.digestEnd]
}

func (s *memKeys) masked(p *memKey) string { return s.fixed.get(p.fixed)[p.digestEnd:] }

func (s *memKeys) instanceName(p *memKey) string { return s.instance(p.inst)[:p.nameEnd] }

func (s *memKeys) instanceURL(p *memKey) string { return s.instance(p.inst)[p.nameEnd:] }

// instance returns the string of r, of inst or of old: inst's chunks are
// numbered after old's.
func (s *memKeys) instance(r arenaRef) string {
	if r.chunk < s.inst.dropped {
		return s.old.get(r)
	}
	return s.inst.get(r)
}

// instMoves is how many keys a write of an instance name moves from the
// old instance arena, during a compaction.
const instMoves = 1024

// setInstance makes name and url p's instance name and URL. When the bytes
// no key refers to any more exceed the ones in use (and 16 MiB), the
// instance arena is compacted: a new one takes the writes, and each write
// moves the current values of the next instMoves keys to it, so that no
// write holds the store's lock for long; the old arena is dropped when
// every key has moved.
func (s *memKeys) setInstance(p *memKey, name, url string) {
	if p.inst.n != 0 && p.inst.chunk >= s.inst.dropped {
		s.stale += int(p.inst.n) // old is dropped whole
	}
	p.inst, p.nameEnd = s.inst.add(name, url), uint32(len(name))
	if len(s.old.chunks) == 0 && s.stale >= 16<<20 && s.stale >= s.inst.bytes()-s.stale {
		s.old, s.moved, s.stale = s.inst, 0, 0
		s.inst = stringArena{dropped: s.old.dropped + uint32(len(s.old.chunks))}
	}
	if len(s.old.chunks) == 0 {
		return
	}
	end := min(s.moved+instMoves, s.n)
	for i := s.moved; i < end; i++ {
		if q := s.at(i); q.inst.n != 0 && q.inst.chunk < s.inst.dropped {
			q.inst = s.inst.add(s.old.get(q.inst))
		}
	}
	if s.moved = end; end == s.n {
		s.old = stringArena{}
	}
}

// extraOf returns p's rarely set fields (the zero memExtra when it has none).
func (s *memKeys) extraOf(p *memKey) memExtra {
	if p.extra == 0 {
		return memExtra{}
	}
	return s.extras[p.extra-1]
}

// setExtra replaces p's rarely set fields. The maps and slices of the old
// value are not changed: readers may still hold them. A key keeps its one
// extra; one without takes none for zero fields.
func (s *memKeys) setExtra(p *memKey, e memExtra) {
	if p.extra == 0 && e.metrics == nil && e.violations == nil && e.rotatedTo == "" && e.rotatedFrom == "" && e.maxInstances == 0 {
		return
	}
	if p.extra == 0 {
		s.extras = append(s.extras, e)
		p.extra = uint32(len(s.extras))
		return
	}
	s.extras[p.extra-1] = e
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// key returns p as a Key, with copies of its metrics and violations.
func (s *memKeys) key(p *memKey) Key {
	k := s.bareKey(p)
	if p.extra != 0 {
		k.LastMetrics = maps.Clone(s.extras[p.extra-1].metrics)
	}
	k.LastViolations = slices.Clone(s.violations(p))
	return k
}

// bareKey returns p as a Key without its metrics and violations.
func (s *memKeys) bareKey(p *memKey) Key {
	fixed, inst := s.fixed.get(p.fixed), s.instance(p.inst)
	k := Key{
		ID: fixed[:idLen], OrganizationID: s.orgs[p.org], LookupValue: fixed[idLen:p.lookupEnd],
		Digest: fixed[p.lookupEnd:p.digestEnd], MaskedKey: fixed[p.digestEnd:],
		InstanceName: inst[:p.nameEnd], InstanceURL: inst[p.nameEnd:], Active: p.active,
		CreatedAt: fromNanos(p.created), ActivatedAt: fromNanos(p.activated),
		LastValidatedAt: fromNanos(p.validated), RevokedAt: fromNanos(p.revoked), ExpiresAt: fromNanos(p.expires),
	}
	if p.digestEnd == p.lookupEnd {
		k.Digest = k.LookupValue
	}
	if p.extra != 0 {
		e := s.extraOf(p)
		k.RotatedTo, k.RotatedFrom, k.MaxInstances = e.rotatedTo, e.rotatedFrom, e.maxInstances
	}
	return k
}

// hexUUID writes u in canonical form (as uuid.UUID.String) to dst, which
// holds idLen bytes.
func hexUUID(dst []byte, u uuid.UUID) {
	hex.Encode(dst[0:8], u[0:4])
	dst[8] = '-'
	hex.Encode(dst[9:13], u[4:6])
	dst[13] = '-'
	hex.Encode(dst[14:18], u[6:8])
	dst[18] = '-'
	hex.Encode(dst[19:23], u[8:10])
	dst[23] = '-'
	hex.Encode(dst[24:], u[10:])
}
