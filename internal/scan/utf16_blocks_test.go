package scan_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/licensekit/licensing/internal/scan"
	"github.com/matryer/is"
)

// oddReader returns at most n bytes per Read, as a pipe or a socket may.
type oddReader struct {
	r io.Reader
	n int
}

func (c oddReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// TestUTF16LargeBlockOddReads: UTF-16 read with a BlockSize above the
// default and odd-sized reads keeps the byte of a code unit split between
// reads (a reallocated buffer dropped it), so the key is found.
func TestUTF16LargeBlockOddReads(t *testing.T) {
	is := is.New(t)
	key := newKey(t)
	in := encodeUTF16("KEY="+key+"\r\n", binary.LittleEndian, bomLE)
	cases := []struct {
		name      string
		blockSize int
		chunk     int
	}{
		{"default block, 3-byte reads", 0, 3},
		{"4 MiB block, whole reads", 4 << 20, 1 << 30},
		{"4 MiB block, 3-byte reads", 4 << 20, 3},
		{"4 MiB block, 1-byte reads", 4 << 20, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			sc := scan.Scanner{BlockSize: c.blockSize}
			got := findings(t, &sc, oddReader{bytes.NewReader([]byte(in)), c.chunk})
			is.Equal(got, []string{at(1, key)})
		})
	}
	_ = is
}
