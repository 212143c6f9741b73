package licensing

import (
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
