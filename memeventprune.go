package licensing

// Retention of the memory store's event log: PruneEvents and what it
// does to the records, their indexes and the string arena.

import (
	"context"
	"slices"
	"sort"
	"time"
)

// PruneEvents implements EventLog. When the deleted events are the oldest
// ones (the Times of the log in Seq order), it costs a binary search (or a
// look at every event, once an event was appended with a Time before its
// predecessor's: the Service appends an owner action's event at once and a
// validation's a moment later, so that is the usual case) and the deleted
// events; the arena's chunks they alone used are released. When a kept
// event is older than a deleted one, it also moves the records after each
// deleted one back, in one pass without hashing (removeLocked): a cost in
// the number of events, paid by the Service's pruner, and a few
// milliseconds at a million. The strings of events deleted from the middle
// of the log stay in the arena until their chunks are released, or until
// they are more than the kept events' strings: then the kept ones move to
// a new arena (moveStrings), at a cost below the deleted strings'.
func (m *MemoryStore) PruneEvents(ctx context.Context, before time.Time, keep int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l := &m.events
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pruneLocked(before, keep), nil
}

func (l *memEvents) pruneLocked(before time.Time, keep int) int {
	n := len(l.recs)
	start := 0 // the first event the count keeps
	if keep > 0 && n > keep {
		start = n - keep
	}
	bsec, bnsec := before.Unix(), uint32(before.Nanosecond())
	old := func(i int) bool { return !before.IsZero() && l.recs[i].timeBefore(bsec, bnsec) }
	first := start // the first event kept
	if !l.unordered {
		first += sort.Search(n-start, func(i int) bool { return !old(start + i) })
	} else {
		for first < n && old(first) {
			first++
		}
		for i := first; i < n; i++ {
			if old(i) {
				l.dropLocked(first) // the oldest, then the others (the first record left is kept)
				deleted := first + l.removeLocked(old)
				l.tidyStrings()
				return deleted
			}
		}
	}
	if first == 0 {
		return 0
	}
	l.dropLocked(first)
	l.tidyStrings()
	return first
}

// dropLocked deletes the k oldest events: it costs the deleted events,
// and releases the arena's chunks that only they used.
func (l *memEvents) dropLocked(k int) {
	if k == 0 {
		return
	}
	if k == len(l.recs) {
		l.resetLocked()
		return
	}
	firstKept := l.recs[k].seq
	orgs := map[string]bool{}
	var f [fieldKey + 1]string
	for i := range k {
		r := &l.recs[i]
		l.held -= int(r.strs.n)
		l.strs.fields(r.strs, f[:])
		l.forgetID(f[fieldID], r.seq)
		if f[fieldKey] != "" {
			if h := l.hashOf(f[fieldKey]); l.heads.seqIs(h, r.seq) {
				l.heads.del(h) // the key's newest event: the others are older
			}
		}
		orgs[f[fieldOrg]] = true
	}
	for org := range orgs {
		seqs := l.byOrg[org]
		j, _ := slices.BinarySearch(seqs, firstKept)
		switch {
		case j == len(seqs):
			delete(l.byOrg, org)
		case j >= len(seqs)-j:
			l.byOrg[org] = slices.Clone(seqs[j:]) // releases the front, at a cost below the deleted
		default:
			l.byOrg[org] = seqs[j:]
		}
	}
	l.strs.releaseBefore(l.recs[k].strs)
	if rest := l.recs[k:]; k >= len(rest) {
		l.recs = slices.Clone(rest)
	} else {
		l.recs = rest
	}
}

// resetLocked empties the log, keeping lastSeq (Seqs are never reused).
func (l *memEvents) resetLocked() {
	l.recs, l.strs, l.unordered, l.held = nil, stringArena{}, false, 0
	l.ids, l.collided, l.heads, l.byOrg = seqIndex{}, nil, seqIndex{}, nil
	l.init()
}

// removeLocked deletes the events that old reports, wherever they are in
// the log, and returns how many: one pass over the records that moves the
// kept ones back, makes the key chains that went through a deleted event
// skip it, and forgets the deleted events' ids, chain heads and Seqs in
// their organizations'. The first record must be kept. Callers hold l.mu.
func (l *memEvents) removeLocked(old func(int) bool) int {
	low := l.recs[0].seq // kept: a chain that goes on below it ends there
	var gone []uint64    // the deleted Seqs, ascending
	next := map[uint64]uint64{}
	orgs := map[string]bool{}
	var f [fieldKey + 1]string
	w := 0
	l.unordered = false
	for i := range l.recs {
		deleted := old(i) // before record w (at most i) is written
		r := l.recs[i]
		if to, ok := next[r.prevKey]; ok {
			r.prevKey = to // past the deleted ones
		}
		if !deleted {
			if w > 0 && r.timeBefore(l.recs[w-1].sec, l.recs[w-1].nsec) {
				l.unordered = true
			}
			l.recs[w] = r
			w++
			continue
		}
		next[r.seq] = r.prevKey
		gone = append(gone, r.seq)
		l.held -= int(r.strs.n)
		l.strs.fields(r.strs, f[:])
		l.forgetID(f[fieldID], r.seq)
		if f[fieldKey] != "" {
			if h := l.hashOf(f[fieldKey]); l.heads.seqIs(h, r.seq) {
				if r.prevKey >= low {
					l.heads.set(h, r.prevKey)
				} else {
					l.heads.del(h) // no older event of the key's hash is held
				}
			}
		}
		orgs[f[fieldOrg]] = true
	}
	l.recs = l.recs[:w]
	for org := range orgs {
		seqs := l.byOrg[org]
		k, _ := slices.BinarySearch(seqs, gone[0])
		kept, g := seqs[:k], 0
		for _, seq := range seqs[k:] {
			for g < len(gone) && gone[g] < seq {
				g++
			}
			if g == len(gone) || gone[g] != seq {
				kept = append(kept, seq) // in place: behind the one read
			}
		}
		if len(kept) == 0 {
			delete(l.byOrg, org)
		} else {
			l.byOrg[org] = kept
		}
	}
	return len(gone)
}

// tidyStrings moves the kept events' strings to a new arena when the
// arena holds more bytes of deleted events (deleted from the middle of
// the log, or before the first kept one in its chunk) than of kept ones,
// and more than two chunks: a copy of fewer bytes than were deleted since
// the arena was new. Callers hold l.mu.
func (l *memEvents) tidyStrings() {
	if garbage := l.strs.bytes() - l.held; garbage <= max(2*arenaChunk, l.held) {
		return
	}
	var a stringArena
	for i := range l.recs {
		r := &l.recs[i]
		r.strs = a.add(l.strs.get(r.strs)) // the fields as addFields wrote them
	}
	l.strs = a
}

// forgetID removes id, the id of deleted event seq, from the id index
// (unless the index names another event by it).
func (l *memEvents) forgetID(id string, seq uint64) {
	if s, ok := l.collided[id]; ok && s == seq {
		delete(l.collided, id)
	} else if h := l.hashOf(id); l.ids.seqIs(h, seq) {
		l.ids.del(h)
	}
}
