package licensing

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
)

// lookupIndex is what the memory store indexes a lookup value by: the 32
// bytes it encodes when it is 64 lower-case hex digits (the HMAC-SHA-256
// the default Hasher makes), else the SHA-256 of the string (other Hashers),
// marked as such. Fixed-size, so that the validate path makes no hex string
// to look a key up.
type lookupIndex struct {
	sum    [sha256.Size]byte
	hashed bool // sum is the SHA-256 of the value, not the bytes it encodes
}

// indexOf returns the index of lookup (see lookupIndex).
func indexOf(lookup string) lookupIndex {
	var ix lookupIndex
	if len(lookup) != 2*len(ix.sum) {
		return lookupIndex{sum: sha256.Sum256([]byte(lookup)), hashed: true}
	}
	for i := range ix.sum {
		hi, ok1 := lowerHexDigit(lookup[2*i])
		lo, ok2 := lowerHexDigit(lookup[2*i+1])
		if !ok1 || !ok2 {
			return lookupIndex{sum: sha256.Sum256([]byte(lookup)), hashed: true}
		}
		ix.sum[i] = hi<<4 | lo
	}
	return ix
}

// lowerHexDigit returns the value of c, one of 0-9 and a-f.
func lowerHexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// encodes reports whether lookup is the 64 lower-case hex digits of sum.
func encodes(lookup string, sum *[sha256.Size]byte) bool {
	var buf [2 * sha256.Size]byte
	hex.Encode(buf[:], sum[:])
	return string(buf[:]) == lookup // no copy: a conversion compared at once
}

// lookupTable is the memory store's index of keys by lookup value: open
// addressing with linear probing in an array at most half full, whose slots
// hold a hash of the lookup index and the key's number in memKeys. A lookup
// reads one slot (rarely two or three, in the same cache line) and then the
// key it needs anyway, where Go's map of a million entries reads a control
// word and a slot in different cache lines; the slots take 16 bytes, not
// the map's 48, and hold no pointer for the collector to follow. Keys are
// never removed.
type lookupTable struct {
	slots []lookupSlot // len a power of two, or 0
	n     int          // slots in use
	seed  maphash.Seed
}

type lookupSlot struct {
	hash uint64 // 0: empty (a hash of 0 is kept as 1)
	key  uint32 // the key's number in memKeys
}

func newLookupTable(n int) lookupTable {
	t := lookupTable{seed: maphash.MakeSeed()}
	t.grow(n)
	return t
}

// hash returns ix's hash, never 0.
func (t *lookupTable) hash(ix *lookupIndex) uint64 {
	h := maphash.Bytes(t.seed, ix.sum[:])
	if ix.hashed {
		h = ^h
	}
	return max(h, 1)
}

// get returns the key of ix among ks, or nil. lookup is the lookup value;
// it is read only when ix is hashed (else the value is the hex of ix.sum).
func (t *lookupTable) get(ks *memKeys, ix *lookupIndex, lookup string) *memKey {
	if t.n == 0 {
		return nil
	}
	h := t.hash(ix)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.hash == 0 {
			return nil
		}
		if s.hash == h {
			if p := ks.at(s.key); ks.hasLookup(p, ix, lookup) {
				return p
			}
		}
	}
}

// put adds p, one of ks, under ix unless the table has a key of that
// lookup value, and reports whether it did.
func (t *lookupTable) put(ks *memKeys, ix *lookupIndex, lookup string, p *memKey) bool {
	if 2*(t.n+1) > len(t.slots) {
		t.grow(t.n + 1)
	}
	h := t.hash(ix)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.hash == 0 {
			*s = lookupSlot{hash: h, key: p.self}
			t.n++
			return true
		}
		if s.hash == h && ks.hasLookup(ks.at(s.key), ix, lookup) {
			return false
		}
	}
}

// grow makes room for n keys (the table at most half full), moving the
// keys it holds.
func (t *lookupTable) grow(n int) {
	size := 8
	for size < 2*n {
		size *= 2
	}
	if size <= len(t.slots) {
		return
	}
	old := t.slots
	t.slots = make([]lookupSlot, size)
	mask := uint64(size - 1)
	for _, s := range old {
		if s.hash == 0 {
			continue
		}
		i := s.hash & mask
		for t.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// hasLookup reports whether p's lookup value is the one of index ix: the
// hex of ix.sum, or, when ix is hashed, lookup.
func (s *memKeys) hasLookup(p *memKey, ix *lookupIndex, lookup string) bool {
	if ix.hashed {
		return s.lookup(p) == lookup
	}
	return encodes(s.lookup(p), &ix.sum)
}
