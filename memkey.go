package licensing

import (
	"encoding/hex"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
)

// memKey is a Key in few objects: its strings, the id's canonical form
// included, share one allocation (blob), its times are UnixNano, and the
// rarely set fields hang off extra.
type memKey struct {
	id   uuid.UUID
	org  string // interned
	blob string // id (idLen) | lookup | digest (unless equal to lookup) | masked | instance name | instance URL
	// ends of the parts of blob; digestEnd == lookupEnd means the digest is the lookup value
	lookupEnd, digestEnd, maskedEnd, nameEnd uint32
	created, activated, validated, revoked   int64 // UnixNano; 0 is the zero time
	expires                                  int64 // UnixNano; 0: never
	active                                   bool
	extra                                    *memExtra
}

// idLen is the length of a key id in canonical form, the start of a blob.
const idLen = 36

type memExtra struct {
	metrics                map[string]float64
	violations             []string
	rotatedTo, rotatedFrom string
	maxInstances           int
}

// idString returns the key's id in canonical form, without allocating.
func (p *memKey) idString() string { return p.blob[:idLen] }

func (p *memKey) lookup() string { return p.blob[idLen:p.lookupEnd] }

func (p *memKey) digest() string {
	if p.digestEnd == p.lookupEnd {
		return p.lookup()
	}
	return p.blob[p.lookupEnd:p.digestEnd]
}

func (p *memKey) masked() string { return p.blob[p.digestEnd:p.maskedEnd] }

func (p *memKey) instanceName() string { return p.blob[p.maskedEnd:p.nameEnd] }

func (p *memKey) instanceURL() string { return p.blob[p.nameEnd:] }

// setStrings rebuilds blob from p.id and the parts.
func (p *memKey) setStrings(lookup, digest, masked, name, url string) {
	if digest == lookup {
		digest = ""
	}
	var id [idLen]byte
	hexUUID(id[:], p.id)
	p.blob = string(id[:]) + lookup + digest + masked + name + url
	p.lookupEnd = idLen + uint32(len(lookup))
	p.digestEnd = p.lookupEnd + uint32(len(digest))
	p.maskedEnd = p.digestEnd + uint32(len(masked))
	p.nameEnd = p.maskedEnd + uint32(len(name))
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

func (m *MemoryStore) newMemKey(id uuid.UUID, k Key) *memKey {
	org, ok := m.orgNames[k.OrganizationID]
	if !ok {
		org = k.OrganizationID
		m.orgNames[org] = org
	}
	p := &memKey{
		id: id, org: org, active: k.Active,
		created: nanos(k.CreatedAt), activated: nanos(k.ActivatedAt),
		validated: nanos(k.LastValidatedAt), revoked: nanos(k.RevokedAt), expires: nanos(k.ExpiresAt),
	}
	p.setStrings(k.LookupValue, k.Digest, k.MaskedKey, k.InstanceName, k.InstanceURL)
	if k.LastMetrics != nil || k.LastViolations != nil || k.RotatedTo != "" || k.RotatedFrom != "" || k.MaxInstances != 0 {
		p.extra = &memExtra{metrics: maps.Clone(k.LastMetrics), violations: slices.Clone(k.LastViolations),
			rotatedTo: k.RotatedTo, rotatedFrom: k.RotatedFrom, maxInstances: k.MaxInstances}
	}
	return p
}

// key returns the Key with copies of its metrics and violations.
func (p *memKey) key() Key {
	k := p.bareKey()
	if p.extra != nil {
		k.LastMetrics, k.LastViolations = maps.Clone(p.extra.metrics), slices.Clone(p.extra.violations)
	}
	return k
}

// bareKey returns the Key without its metrics and violations.
func (p *memKey) bareKey() Key {
	k := Key{
		ID: p.idString(), OrganizationID: p.org, LookupValue: p.lookup(), Digest: p.digest(),
		MaskedKey: p.masked(), InstanceName: p.instanceName(), InstanceURL: p.instanceURL(), Active: p.active,
		CreatedAt: fromNanos(p.created), ActivatedAt: fromNanos(p.activated),
		LastValidatedAt: fromNanos(p.validated), RevokedAt: fromNanos(p.revoked), ExpiresAt: fromNanos(p.expires),
	}
	if p.extra != nil {
		k.RotatedTo, k.RotatedFrom, k.MaxInstances = p.extra.rotatedTo, p.extra.rotatedFrom, p.extra.maxInstances
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
