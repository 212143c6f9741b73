package licensing

import (
	"math/rand/v2"
	"testing"

	"github.com/matryer/is"
)

// TestSeqIndex: the index answers as a map does through random sets,
// replacements and deletions, with hashes spread and with hashes whose
// low bits collide (long runs that wrap around the table's end, where a
// deletion must move entries back), and stays at most 3/4 full.
func TestSeqIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash func(r *rand.Rand) uint64
	}{
		{"spread", func(r *rand.Rand) uint64 { return r.Uint64() }},
		{"low bits collide", func(r *rand.Rand) uint64 { return r.Uint64N(64)<<40 | []uint64{0, 15, 1 << 12, 1<<40 - 1}[r.IntN(4)] }},
		{"small", func(r *rand.Rand) uint64 { return r.Uint64N(40) }}, // 0 included
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r := rand.New(rand.NewPCG(3, 4))
			var ix seqIndex
			want := map[uint64]uint64{}
			_, ok := ix.get(7)
			is.True(!ok) // the zero value is empty
			ix.del(7)    // and deleting from it is nothing
			for step := range 20_000 {
				h := tc.hash(r)
				switch r.IntN(3) {
				case 0, 1:
					seq := uint64(step + 1)
					ix.set(h, seq)
					want[h] = seq
				case 2:
					ix.del(h)
					delete(want, h)
				}
				if step%97 == 0 || step > 19_900 {
					is.Equal(ix.len(), len(want))
					is.True(4*ix.len() <= 3*len(ix.slots))
					for h, seq := range want {
						got, ok := ix.get(h)
						is.True(ok)
						is.Equal(got, seq)
					}
				}
			}
			for h := range want {
				ix.del(h)
			}
			is.Equal(ix.len(), 0)
			for _, s := range ix.slots {
				is.Equal(s, seqSlot{}) // every slot emptied
			}
		})
	}
}

// TestSeqIndexShrinks: an index that held many hashes and lost most of
// them gives its slots back (a pruned event log keeps no table sized for
// the events it held), and still answers for the ones left.
func TestSeqIndexShrinks(t *testing.T) {
	is := is.New(t)
	var ix seqIndex
	const n, left = 100_000, 10
	for h := range uint64(n) {
		ix.set(h*0x9e3779b97f4a7c15, h+1)
	}
	is.True(len(ix.slots) >= n)
	for h := range uint64(n - left) {
		ix.del(h * 0x9e3779b97f4a7c15)
	}
	is.Equal(ix.len(), left)
	is.True(len(ix.slots) <= 8*left) // slots given back
	for h := uint64(n - left); h < n; h++ {
		seq, ok := ix.get(h * 0x9e3779b97f4a7c15)
		is.True(ok)
		is.Equal(seq, h+1)
	}
	for h := uint64(n - left); h < n; h++ {
		ix.del(h * 0x9e3779b97f4a7c15)
	}
	is.Equal(len(ix.slots), 0) // an empty index holds no slot
}
