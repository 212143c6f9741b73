package licensing

// seqIndex maps 64-bit hashes to Seqs (non-zero) in one slice without
// pointers (open addressing with linear probing): one heap object for the
// collector, however many entries. The hashes must be well spread (seeded
// maphash); it holds one Seq a hash. get, set and del cost a few probes;
// set doubles the table, a cost in its entries, when it is 3/4 full, and
// del quarters it when it is less than 1/8 full (a pruned log gives its
// slots back; each resize follows at least a quarter of the table's
// slots in sets or dels since the last, so their cost is a constant a
// call). The zero value is an empty index.
type seqIndex struct {
	slots []seqSlot // a power of two of them, or none
	n     int       // slots in use
}

type seqSlot struct {
	h, seq uint64 // seq 0: an empty slot
}

// get returns the Seq of hash h.
func (t *seqIndex) get(h uint64) (uint64, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.seq == 0 {
			return 0, false
		}
		if s.h == h {
			return s.seq, true
		}
	}
}

// seqIs reports whether seq is the Seq of hash h.
func (t *seqIndex) seqIs(h, seq uint64) bool {
	got, ok := t.get(h)
	return ok && got == seq
}

// set makes seq (non-zero) the Seq of hash h.
func (t *seqIndex) set(h, seq uint64) {
	if 4*(t.n+1) > 3*len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.seq == 0 {
			*s = seqSlot{h, seq}
			t.n++
			return
		}
		if s.h == h {
			s.seq = seq
			return
		}
	}
}

// del forgets hash h, moving back the entries after it in its run so that
// no probe stops early (no tombstone).
func (t *seqIndex) del(h uint64) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for ; t.slots[i].h != h; i = (i + 1) & mask {
		if t.slots[i].seq == 0 {
			return
		}
	}
	if t.slots[i].seq == 0 {
		return
	}
	for j := (i + 1) & mask; t.slots[j].seq != 0; j = (j + 1) & mask {
		home := t.slots[j].h & mask
		// The entry at j may move to the hole at i when its home is not in
		// the cyclic range (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = seqSlot{}
	t.n--
	switch {
	case t.n == 0:
		t.slots = nil
	case 8*t.n < len(t.slots) && len(t.slots) > 16:
		t.resize(len(t.slots) / 4)
	}
}

// len returns the number of hashes held.
func (t *seqIndex) len() int { return t.n }

func (t *seqIndex) grow() { t.resize(2 * len(t.slots)) }

// resize moves the entries to a table of size slots (a power of two; at
// least 16).
func (t *seqIndex) resize(size int) {
	old := t.slots
	t.slots, t.n = make([]seqSlot, max(16, size)), 0
	for _, s := range old {
		if s.seq != 0 {
			t.set(s.h, s.seq)
		}
	}
}
