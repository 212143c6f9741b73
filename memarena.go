package licensing

import "strings"

// stringArena keeps many small strings in a few large chunks, and hands out
// references to them that hold no pointer (arenaRef), so that the memory
// store's millions of strings cost the garbage collector a few chunks to
// mark at each cycle, not an object each.
//
// What was written is never changed: a string that get returns stays valid
// (and keeps its chunk alive) after later adds, releases and compactions.
// The arena is not safe for concurrent use; its owner's lock guards it.
// The zero value is an empty arena.
type stringArena struct {
	chunks  []string         // chunk i (counted from dropped) as written so far
	cur     *strings.Builder // the last chunk; appends never move its bytes
	dropped uint32           // chunks released from the front
	size    int              // bytes in chunks still held
}

// arenaRef names a string of a stringArena. The zero value is the empty
// string.
type arenaRef struct {
	chunk, off, n uint32
}

// arenaChunk is the size of a chunk; a longer string gets a chunk of its
// own.
const arenaChunk = 1 << 20

// add writes the concatenation of parts and returns its reference.
func (a *stringArena) add(parts ...string) arenaRef {
	n := 0
	for _, s := range parts {
		n += len(s)
	}
	if n == 0 {
		return arenaRef{}
	}
	if a.cur == nil || a.cur.Cap()-a.cur.Len() < n {
		a.cur = new(strings.Builder)
		a.cur.Grow(max(n, arenaChunk))
		a.chunks = append(a.chunks, "")
	}
	off := a.cur.Len()
	for _, s := range parts {
		a.cur.WriteString(s) // within the capacity: the chunk's bytes stay where they are
	}
	last := len(a.chunks) - 1
	a.chunks[last] = a.cur.String()
	a.size += n
	return arenaRef{chunk: a.dropped + uint32(last), off: uint32(off), n: uint32(n)}
}

// get returns the string of r, without copying it. r must come from add on
// this arena and its chunk must not be released.
func (a *stringArena) get(r arenaRef) string {
	if r.n == 0 {
		return ""
	}
	return a.chunks[r.chunk-a.dropped][r.off : r.off+r.n]
}

// releaseBefore drops the chunks before the one of r, whose strings no
// reference will read again.
func (a *stringArena) releaseBefore(r arenaRef) {
	if r.n == 0 || r.chunk <= a.dropped {
		return
	}
	k := int(r.chunk - a.dropped)
	for _, c := range a.chunks[:k] {
		a.size -= len(c)
	}
	a.chunks = append([]string(nil), a.chunks[k:]...)
	a.dropped = r.chunk
}

// bytes returns the bytes held in chunks (written, and not released).
func (a *stringArena) bytes() int { return a.size }

// addFields writes fields as one string, each field after its length as a
// uvarint, and returns its reference: many strings for one reference, read
// back with fields. Its reference is never the zero one, even when every
// field is empty.
func (a *stringArena) addFields(fields ...string) arenaRef {
	n := 0
	for _, s := range fields {
		n += uvarintLen(len(s)) + len(s)
	}
	if n == 0 {
		return arenaRef{}
	}
	if a.cur == nil || a.cur.Cap()-a.cur.Len() < n {
		a.cur = new(strings.Builder)
		a.cur.Grow(max(n, arenaChunk))
		a.chunks = append(a.chunks, "")
	}
	off := a.cur.Len()
	for _, s := range fields { // within the capacity: the chunk's bytes stay where they are
		for v := uint(len(s)); ; v >>= 7 {
			if v < 0x80 {
				a.cur.WriteByte(byte(v))
				break
			}
			a.cur.WriteByte(byte(v) | 0x80)
		}
		a.cur.WriteString(s)
	}
	last := len(a.chunks) - 1
	a.chunks[last] = a.cur.String()
	a.size += n
	return arenaRef{chunk: a.dropped + uint32(last), off: uint32(off), n: uint32(n)}
}

// fields reads into out the first len(out) fields that addFields wrote as
// r, without copying them. r must come from addFields on this arena, with
// at least len(out) fields, and its chunk must not be released.
func (a *stringArena) fields(r arenaRef, out []string) {
	s := a.get(r)
	for i := range out {
		n, shift := 0, 0
		for {
			b := s[0]
			s = s[1:]
			n |= int(b&0x7f) << shift
			if b < 0x80 {
				break
			}
			shift += 7
		}
		out[i], s = s[:n], s[n:]
	}
}

// uvarintLen is the length of n written as a uvarint.
func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}
