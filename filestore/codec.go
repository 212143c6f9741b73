package filestore

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
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

	// Instances and seats (13-19). A store that never used them is written
	// without them, and opens with the release before them; one that did is
	// refused by it (an unknown record type), never read with a limit or a
	// seat lost.
	recKeyInstances         byte = 13 // a whole key with its lifetime fields and MaxInstances (not 0)
	recMaxInstances         byte = 14 // id, n: SetMaxInstances
	recSeat                 byte = 15 // key id, lease, the instance: a new seat (SeatInstance)
	recRelease              byte = 16 // key id, instance id: ReleaseInstance
	recValidationsInstances byte = 17 // a batch of validation records, each with its InstanceID
	recInstances            byte = 18 // key id and every instance it holds: a snapshot entry
	recRotateInstances      byte = 19 // recRotate whose new key has MaxInstances

	// The event log (20-29, filestore/events.go).
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

// keyType returns the record type a key is written as: recKeyInstances
// when it has a MaxInstances, else recKeyLifetime when it has a lifetime
// field, else recKey (as before either existed).
func keyType(k licensing.Key) byte {
	switch {
	case k.MaxInstances != 0:
		return recKeyInstances
	case hasLifetime(k):
		return recKeyLifetime
	}
	return recKey
}

// encodeKey writes k as a record of its keyType.
func encodeKey(e *encoder, k licensing.Key) {
	typ := keyType(k)
	e.byte(typ)
	encodeKeyFields(e, k, typ)
}

// encodeKeyFields writes every field of k as a record of type typ (a
// keyType) holds them: the lifetime fields after the others when typ is
// recKeyLifetime or recKeyInstances, then MaxInstances for the latter.
func encodeKeyFields(e *encoder, k licensing.Key, typ byte) {
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
	if typ != recKey {
		e.time(k.ExpiresAt)
		e.str(k.RotatedTo)
		e.str(k.RotatedFrom)
	}
	if typ == recKeyInstances {
		e.uvarint(uint64(k.MaxInstances))
	}
}

// decodeKey reads the key of a record of type typ (a keyType): a recKey
// key never expires, was never rotated and has no MaxInstances, a
// recKeyLifetime key has no MaxInstances. A key that encodeKey would have
// written as another type fails the decoder.
func decodeKey(d *decoder, typ byte) licensing.Key {
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
	if typ != recKey {
		k.ExpiresAt = d.time()
		k.RotatedTo = d.str()
		k.RotatedFrom = d.str()
	}
	if typ == recKeyInstances {
		n := d.uvarint()
		if n > licensing.MaxInstancesLimit {
			d.fail()
		}
		k.MaxInstances = int(n)
	}
	if d.err == nil && keyType(k) != typ {
		d.fail() // encodeKey writes such a key as another type
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
// A new key with a MaxInstances makes it a recRotateInstances record.
func encodeRotate(e *encoder, oldID string, oldExpiresAt time.Time, newKey licensing.Key) {
	typ := keyType(newKey) // RotatedFrom is set: recKeyLifetime or recKeyInstances
	if typ == recKeyInstances {
		e.byte(recRotateInstances)
	} else {
		e.byte(recRotate)
	}
	e.str(oldID)
	e.time(oldExpiresAt)
	encodeKeyFields(e, newKey, typ)
}

// decodeRotate reads a recRotate record, or a recRotateInstances one when
// instances is set.
func decodeRotate(d *decoder, instances bool) (oldID string, oldExpiresAt time.Time, newKey licensing.Key) {
	oldID = d.str()
	oldExpiresAt = d.time()
	typ := recKeyLifetime
	if instances {
		typ = recKeyInstances
	}
	newKey = decodeKey(d, typ)
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

// encodeValidations writes a batch as a recValidations record, or as a
// recValidationsInstances one when a record of it names an instance.
func encodeValidations(e *encoder, recs []licensing.ValidationRecord) {
	withInstances := slices.ContainsFunc(recs, func(r licensing.ValidationRecord) bool { return r.InstanceID != "" })
	if withInstances {
		e.byte(recValidationsInstances)
	} else {
		e.byte(recValidations)
	}
	e.uvarint(uint64(len(recs)))
	for _, r := range recs {
		if withInstances {
			e.str(r.InstanceID)
		}
		e.str(r.KeyID)
		e.time(r.FirstAt)
		e.time(r.At)
		e.str(r.InstanceName)
		e.str(r.InstanceURL)
		e.metrics(r.Metrics)
		e.strings(r.Violations)
	}
}

// decodeValidations reads the batch of a recValidations record, or of a
// recValidationsInstances one when instances is set.
func decodeValidations(d *decoder, instances bool) []licensing.ValidationRecord {
	n := d.uvarint()
	if n > uint64(len(d.s)) {
		d.fail()
		return nil
	}
	recs := make([]licensing.ValidationRecord, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		var r licensing.ValidationRecord
		if instances {
			r.InstanceID = strings.Clone(d.str()) // kept in the instance list: do not pin the payload
		}
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

func encodeMaxInstances(e *encoder, id string, n int) {
	e.byte(recMaxInstances)
	e.str(id)
	e.uvarint(uint64(n))
}

func decodeMaxInstances(d *decoder) (id string, n int) {
	id = d.str()
	u := d.uvarint()
	if u > licensing.MaxInstancesLimit {
		d.fail()
	}
	return id, int(u)
}

// encodeInstance writes the fields of in; FirstSeenAt only when first is
// set (a new seat's is its LastSeenAt).
func encodeInstance(e *encoder, in licensing.Instance, first bool) {
	e.str(in.ID)
	e.str(in.Name)
	e.str(in.URL)
	if first {
		e.time(in.FirstSeenAt)
	}
	e.time(in.LastSeenAt)
	e.metrics(in.Metrics)
}

// decodeInstance reads what encodeInstance wrote. Its strings are copies:
// an instance outlives the payload in memory.
func decodeInstance(d *decoder, first bool) licensing.Instance {
	var in licensing.Instance
	in.ID = strings.Clone(d.str())
	in.Name = strings.Clone(d.str())
	in.URL = strings.Clone(d.str())
	if first {
		in.FirstSeenAt = d.time()
	}
	in.LastSeenAt = d.time()
	in.Metrics = d.metrics()
	if in.ID == "" {
		d.fail()
	}
	return in
}

// encodeSeat writes a new seat: the key, the lease it was taken under (a
// replay forgets, as SeatInstance did, the instances it had run out for),
// and the instance as SeatInstance was given it.
func encodeSeat(e *encoder, keyID string, lease time.Duration, in licensing.Instance) {
	e.byte(recSeat)
	e.str(keyID)
	e.uvarint(uint64(max(lease, 0)))
	encodeInstance(e, in, false)
}

func decodeSeat(d *decoder) (keyID string, lease time.Duration, in licensing.Instance) {
	keyID = d.str()
	u := d.uvarint()
	if u > math.MaxInt64 {
		d.fail()
	}
	lease = time.Duration(u)
	in = decodeInstance(d, false)
	return keyID, lease, in
}

func encodeRelease(e *encoder, keyID, instanceID string) {
	e.byte(recRelease)
	e.str(keyID)
	e.str(instanceID)
}

func decodeRelease(d *decoder) (keyID, instanceID string) {
	return d.str(), d.str()
}

// encodeInstances writes a snapshot entry: a key's id and every instance
// it holds, whole.
func encodeInstances(e *encoder, keyID string, list []licensing.Instance) {
	e.byte(recInstances)
	e.str(keyID)
	e.uvarint(uint64(len(list)))
	for _, in := range list {
		encodeInstance(e, in, true)
	}
}

func decodeInstances(d *decoder) (keyID string, list []licensing.Instance) {
	keyID = d.str()
	n := d.uvarint()
	if n == 0 || n > uint64(len(d.s)) {
		d.fail()
		return keyID, nil
	}
	list = make([]licensing.Instance, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		list = append(list, decodeInstance(d, true))
	}
	return keyID, list
}
