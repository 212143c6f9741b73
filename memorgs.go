package licensing

// orgLists holds the keys of each organization of a MemoryStore, as numbers
// in memKeys, oldest first, in one slice that holds no pointer: a store of
// many organizations with a key or two each costs the collector two
// objects, not one per organization. The list of organization o is
// keys[at[o].off:][:at[o].n], with room for at[o].room keys; a list that
// outgrows its room moves to the end of keys with twice the room. Lists
// never shrink (keys are never removed), so the rooms a list leaves behind
// add up to less than its own: keys holds at most four entries per key.
// The MemoryStore's lock guards it; a list it returns is valid until the
// next extend.
type orgLists struct {
	keys []uint32
	at   []orgSpan // by organization (index in memKeys.orgs)
}

type orgSpan struct{ off, n, room uint32 }

// list returns the keys of organization org (nil when it has none), to
// read or reorder in place.
func (o *orgLists) list(org uint32) []uint32 {
	if int(org) >= len(o.at) {
		return nil
	}
	s := o.at[org]
	return o.keys[s.off : s.off+s.n : s.off+s.n]
}

// extend lengthens org's list by k entries (zero) and returns it.
func (o *orgLists) extend(org uint32, k int) []uint32 {
	for int(org) >= len(o.at) {
		o.at = append(o.at, orgSpan{})
	}
	s := &o.at[org]
	if n := s.n + uint32(k); n > s.room {
		room := max(n, 2*s.room) // at least twice the last: the rooms left behind add up to less than this one
		off := len(o.keys)
		o.keys = append(o.keys, o.keys[s.off:s.off+s.n]...)
		o.keys = append(o.keys, make([]uint32, room-s.n)...)
		s.off, s.room = uint32(off), room
	}
	s.n += uint32(k)
	return o.keys[s.off : s.off+s.n : s.off+s.n]
}
