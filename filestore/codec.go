package filestore

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/licensekit/licensing"
)

// Record types. A record's payload starts with its type byte.
const (
	recKey           byte = 1 // a whole key: create, or a snapshot entry
	recRevoke        byte = 2 // id, time
	recValidations   byte = 3 // a batch of validation records
	recSnapshotEnd   byte = 4 // the number of keys in a snapshot, last
	recSnapshotBegin byte = 5 // the number of keys in a snapshot, first
	recFingerprint   byte = 6 // the pepper fingerprint the store was created with
	recKeyLifetime   byte = 7 // a whole key with ExpiresAt, RotatedTo, RotatedFrom (recKey when all are zero)
	recExpiry        byte = 8 // id, expiry: SetKeyExpiry
	recRotate        byte = 9 // old id, the old key's expiry after it, the new key as stored: RotateKey, whole or not at all
	// 13-19: instances (filestore/instances.go).
	// 20-29: the event log (filestore/events.go).
	recEvents      byte = 20 // events with their Seqs: AppendEvents, and a snapshot's events
	recEventSeq    byte = 21 // the greatest Seq ever given, in a snapshot: Seqs are never reused
	recPruneEvents byte = 22 // before, keep: PruneEvents, replayed on the same events to the same result
)

var errDecode = errors.New("malformed record payload")

type encoder struct{ b []byte }

func (e *encoder) byte(c byte)      { e.b = append(e.b, c) }
func (e *encoder) uvarint(n uint64) { e.b = binary.AppendUvarint(e.b, n) }
func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.b = binary.AppendVarint(e.b, 0)
		return
	}
	e.b = binary.AppendVarint(e.b, t.UnixNano())
}
func (e *encoder) bool(v bool) {
	if v {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

// metrics and violations keep nil apart from empty: 0 is nil, n+1 is n entries.
func (e *encoder) metrics(m map[string]float64) {
	if m == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(m)) + 1)
	for k, v := range m {
		e.str(k)
		e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(v))
	}
}
func (e *encoder) strings(s []string) {
	if s == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(s)) + 1)
	for _, v := range s {
		e.str(v)
	}
}

// decoder reads a payload held as one string: the strings it returns are
// substrings of it, so decoding a key costs one allocation, not one a field.
type decoder struct {
	s   string
	err error
}

func newDecoder(payload []byte) *decoder { return &decoder{s: string(payload[1:])} }

func (d *decoder) fail() { d.err = errDecode; d.s = "" }

func (d *decoder) byte() byte {
	if len(d.s) < 1 {
		d.fail()
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}
func (d *decoder) uvarint() uint64 {
	var n uint64
	for i := 0; i < len(d.s) && i < binary.MaxVarintLen64; i++ {
		c := d.s[i]
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			d.s = d.s[i+1:]
			return n
		}
	}
	d.fail()
	return 0
}
func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}
func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.fail()
		return ""
	}
	v := d.s[:n]
	d.s = d.s[n:]
	return v
}
func (d *decoder) time() time.Time {
	n := d.varint()
	if d.err != nil || n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
func (d *decoder) bool() bool { return d.byte() == 1 }
func (d *decoder) float() float64 {
	if len(d.s) < 8 {
		d.fail()
		return 0
	}
	v := math.Float64frombits(binary.BigEndian.Uint64([]byte(d.s[:8])))
	d.s = d.s[8:]
	return v
}
func (d *decoder) metrics() map[string]float64 {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	n--
	if n > uint64(len(d.s)) {
		d.fail()
		return nil
	}
	m := make(map[string]float64, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		k := strings.Clone(d.str()) // do not pin the whole payload
		m[k] = d.float()
	}
	return m
}
func (d *decoder) strings() []string {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	n--
	if n > uint64(len(d.s)) {
		d.fail()
		return nil
	}
	s := make([]string, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		s = append(s, strings.Clone(d.str()))
	}
	return s
}

// hasLifetime reports whether k carries a lifetime field. A key without one
// is written as a recKey record, as before lifetimes existed, so a store that
// never used them still opens with the previous release; one that did is
// refused by it (an unknown record type), never read with its expiry lost.
func hasLifetime(k licensing.Key) bool {
	return !k.ExpiresAt.IsZero() || k.RotatedTo != "" || k.RotatedFrom != ""
}

// encodeKey writes k as a recKey or recKeyLifetime record.
func encodeKey(e *encoder, k licensing.Key) {
	if hasLifetime(k) {
		e.byte(recKeyLifetime)
	} else {
		e.byte(recKey)
	}
	encodeKeyFields(e, k)
}

// encodeKeyFields writes every field of k, its lifetime fields last and
// only if it has any.
func encodeKeyFields(e *encoder, k licensing.Key) {
	e.str(k.ID)
	e.str(k.OrganizationID)
	e.str(k.LookupValue)
	if k.Digest == k.LookupValue {
		e.byte(1) // digest is the lookup value
	} else {
		e.byte(0)
		e.str(k.Digest)
	}
	e.str(k.MaskedKey)
	e.str(k.InstanceName)
	e.str(k.InstanceURL)
	e.bool(k.Active)
	e.time(k.CreatedAt)
	e.time(k.ActivatedAt)
	e.time(k.LastValidatedAt)
	e.time(k.RevokedAt)
	e.metrics(k.LastMetrics)
	e.strings(k.LastViolations)
	if hasLifetime(k) {
		e.time(k.ExpiresAt)
		e.str(k.RotatedTo)
		e.str(k.RotatedFrom)
	}
}

// decodeKey reads the key of a recKey record, or of a recKeyLifetime one
// when lifetime is set (a recKey key never expires and was never rotated).
func decodeKey(d *decoder, lifetime bool) licensing.Key {
	var k licensing.Key
	k.ID = d.str()
	k.OrganizationID = d.str()
	k.LookupValue = d.str()
	if d.byte() == 1 {
		k.Digest = k.LookupValue
	} else {
		k.Digest = d.str()
	}
	k.MaskedKey = d.str()
	k.InstanceName = d.str()
	k.InstanceURL = d.str()
	k.Active = d.bool()
	k.CreatedAt = d.time()
	k.ActivatedAt = d.time()
	k.LastValidatedAt = d.time()
	k.RevokedAt = d.time()
	k.LastMetrics = d.metrics()
	k.LastViolations = d.strings()
	if lifetime {
		k.ExpiresAt = d.time()
		k.RotatedTo = d.str()
		k.RotatedFrom = d.str()
		if !hasLifetime(k) {
			d.fail() // encodeKey writes such a key as a recKey record
		}
	}
	return k
}

func encodeExpiry(e *encoder, id string, expiresAt time.Time) {
	e.byte(recExpiry)
	e.str(id)
	e.time(expiresAt)
}

// encodeRotate writes a rotation as one record: the old key's id and its
// expiry after the rotation, and the new key as stored (RotatedFrom, and
// the fields taken over from the old key, already set).
func encodeRotate(e *encoder, oldID string, oldExpiresAt time.Time, newKey licensing.Key) {
	e.byte(recRotate)
	e.str(oldID)
	e.time(oldExpiresAt)
	encodeKeyFields(e, newKey) // RotatedFrom is set: the lifetime fields are there
}

// decodeRotate reads a recRotate record.
func decodeRotate(d *decoder) (oldID string, oldExpiresAt time.Time, newKey licensing.Key) {
	oldID = d.str()
	oldExpiresAt = d.time()
	newKey = decodeKey(d, true)
	if newKey.RotatedFrom != oldID {
		d.fail()
	}
	return oldID, oldExpiresAt, newKey
}

func encodeFingerprint(e *encoder, fp string) {
	e.byte(recFingerprint)
	e.str(fp)
}

func encodeRevoke(e *encoder, id string, at time.Time) {
	e.byte(recRevoke)
	e.str(id)
	e.time(at)
}

func encodeValidations(e *encoder, recs []licensing.ValidationRecord) {
	e.byte(recValidations)
	e.uvarint(uint64(len(recs)))
	for _, r := range recs {
		e.str(r.KeyID)
		e.time(r.FirstAt)
		e.time(r.At)
		e.str(r.InstanceName)
		e.str(r.InstanceURL)
		e.metrics(r.Metrics)
		e.strings(r.Violations)
	}
}

func decodeValidations(d *decoder) []licensing.ValidationRecord {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.fail()
		return nil
	}
	recs := make([]licensing.ValidationRecord, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		var r licensing.ValidationRecord
		r.KeyID = d.str()
		r.FirstAt = d.time()
		r.At = d.time()
		r.InstanceName = d.str()
		r.InstanceURL = d.str()
		r.Metrics = d.metrics()
		r.Violations = d.strings()
		recs = append(recs, r)
	}
	return recs
}
