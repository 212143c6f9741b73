package licensing

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"
)

func TestStringArena(t *testing.T) {
	is := is.New(t)
	var a stringArena
	is.Equal(a.get(a.add()), "")        // nothing written: the empty string
	is.Equal(a.add("", ""), arenaRef{}) // the zero reference
	var refs []arenaRef
	var want []string
	for i := 0; i < 3*arenaChunk/100; i++ { // crosses chunk ends
		s := strings.Repeat(string(rune('a'+i%26)), 1+i%150)
		refs, want = append(refs, a.add(s[:len(s)/2], s[len(s)/2:])), append(want, s)
	}
	big := strings.Repeat("x", 2*arenaChunk) // longer than a chunk: a chunk of its own
	refs, want = append(refs, a.add(big)), append(want, big)
	held := a.get(refs[0])
	for i, r := range refs {
		is.Equal(a.get(r), want[i])
	}
	is.True(len(a.chunks) >= 4)
	before := a.bytes()
	a.releaseBefore(refs[len(refs)-2]) // every chunk before the second-last string's
	is.True(a.bytes() < before)
	for i := len(refs) - 2; i < len(refs); i++ {
		is.Equal(a.get(refs[i]), want[i])
	}
	is.Equal(held, want[0]) // a string read before the release stays whole
	r := a.add("after")
	is.Equal(a.get(r), "after")
	a.releaseBefore(arenaRef{}) // the zero reference releases nothing
	is.Equal(a.get(r), "after")
}

// TestStringArenaFields: fields reads back what addFields wrote, whatever
// the lengths (empty, one byte under and over a uvarint step, longer than a
// chunk), across chunk ends, and a record of empty fields is not the zero
// reference.
func TestStringArenaFields(t *testing.T) {
	is := is.New(t)
	var a stringArena
	empty := a.addFields("", "", "")
	is.True(empty != arenaRef{}) // the lengths are written
	got := make([]string, 3)
	a.fields(empty, got)
	is.Equal(got, []string{"", "", ""})
	var refs []arenaRef
	var want [][]string
	for i := 0; i < 40_000; i++ { // about 3 chunks
		f := []string{fmt.Sprint(i), strings.Repeat("y", i%300), "", strings.Repeat("z", 127+i%3)}
		refs, want = append(refs, a.addFields(f...)), append(want, f)
	}
	huge := []string{"h", strings.Repeat("x", arenaChunk+1), "t"}
	refs, want = append(refs, a.addFields(huge...)), append(want, huge)
	is.True(len(a.chunks) >= 4)
	for i, r := range refs {
		got := make([]string, len(want[i]))
		a.fields(r, got)
		is.Equal(got, want[i])
	}
	first := make([]string, 1)
	a.fields(refs[7], first) // fewer fields than written: the first ones
	is.Equal(first[0], "7")
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 1 << 21} {
		is.Equal(uvarintLen(n), len(binary.AppendUvarint(nil, uint64(n))))
	}
}
