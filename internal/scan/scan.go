// Package scan finds license keys in text: strings that are well-formed keys
// of this module (64 hexadecimal characters whose last 8 are the CRC-32 of the
// first 56) and so were most likely issued by a licensing server. It is what
// `licensing-server scan` runs in a CI pipeline or a pre-commit hook to stop a
// key from being committed or pasted somewhere it should not be.
//
// # What counts as a key
//
// A key is a run of exactly 64 hex characters (either case) whose checksum is
// valid and that stands alone: the bytes on either side are not ASCII letters
// or digits, so a key is found inside quotes, JSON, URLs or `KEY=...`, but not
// inside a 128-character hex string or an identifier. Two common escapes are
// also boundaries on the left: a backslash escape `\n`, `\r` or `\t` (a key on
// its own line inside a JSON string) and a percent escape `%XX` (a key inside
// a URL-encoded query). Lines are counted by '\n', so CRLF files number their
// lines as editors do. Keys split across lines are not keys.
//
// # Security
//
// Findings carry only the masked key (its first and last 8 characters, as the
// server shows them), never the key itself, so the scanner's output can go
// into CI logs. The scanner never follows a symbolic link it finds while
// walking a directory.
//
// The package imports only the standard library.
package scan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// KeyLength is the length of a license key in characters.
const KeyLength = 64

const (
	bodyLength = 56 // hex characters covered by the checksum
	maskEdge   = 8
	// maxCarry is the most a block passes on to the next: an undecided hex
	// run (at most 66 characters with a percent escape) and 2 bytes of
	// context before it.
	maxCarry = 2 + KeyLength + 2
)

// DefaultBlockSize is the size of the blocks a Scanner reads when its
// BlockSize is 0.
const DefaultBlockSize = 1 << 20

// MinBlockSize is the smallest BlockSize a Scanner uses; a smaller one is
// raised to it.
const MinBlockSize = 2 * maxCarry

var errNilFound = errors.New("scan: nil found function")

// A Scanner reads text in large blocks and reports the license keys in it.
// The zero value is ready to use. A Scanner keeps its buffer between calls, so
// reuse one for many files; it is not safe for concurrent use.
type Scanner struct {
	// BlockSize is how many bytes are read at a time; 0 means
	// DefaultBlockSize. Keys that straddle two blocks are found all the same.
	BlockSize int

	buf []byte
}

// class bits of a byte.
const (
	isHex   = 1 << iota // 0-9 a-f A-F
	isAlnum             // 0-9 a-z A-Z
)

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = isHex | isAlnum
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = isAlnum, isAlnum
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = isHex|isAlnum, isHex|isAlnum
	}
	return t
}()

// Reader reads r to its end and calls found, in order, for each key in it,
// with the 1-based number of the line the key is on and the key masked: its
// first 8 characters, "...", and its last 8 characters, in lower case (as the
// server shows a key after creation). It returns the first read error other
// than io.EOF; keys found before the error have been reported.
func (s *Scanner) Reader(r io.Reader, found func(line int, masked string)) error {
	if found == nil {
		return errNilFound
	}
	size := s.BlockSize
	if size == 0 {
		size = DefaultBlockSize
	}
	size = max(size, MinBlockSize)
	if len(s.buf) != size {
		s.buf = make([]byte, size)
	}
	b := blockScanner{line: 1, found: found}
	carry, start := 0, 0 // bytes kept at the front of buf; where scanning resumes in them
	for {
		n, err := r.Read(s.buf[carry:])
		if n > 0 {
			carry, start = b.block(s.buf[:carry+n], start, false)
		}
		if err == io.EOF {
			b.block(s.buf[:carry], start, true)
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// blockScanner is the state carried from one block to the next.
type blockScanner struct {
	line    int  // line number at the first byte not yet counted
	skipHex bool // the previous block ended inside a hex run too long to be a key
	found   func(line int, masked string)
}

// block reports the keys that lie wholly in buf[start:] (buf[:start] is
// context: bytes already scanned, kept to judge boundaries) and moves the
// bytes it cannot decide yet to the front of buf. It returns how many it
// moved and where scanning resumes in them. With eof, the end of buf is the
// end of the input and nothing is kept.
//
// The search skips: a key that starts at or after i covers buf[i+63], so when
// that byte is not hex no key starts in buf[i:i+64], and scanning resumes
// after it. Most text is skipped 64 bytes at a time; a byte of a hex run is
// read about once.
func (b *blockScanner) block(buf []byte, start int, eof bool) (carry, resume int) {
	n := len(buf)
	i, counted := start, start
	if b.skipHex {
		for i < n && class[buf[i]]&isHex != 0 {
			i++
		}
		if i == n && !eof {
			b.line += bytes.Count(buf[counted:], newline)
			return 0, 0
		}
		b.skipHex = false
		i++ // the byte that ended the run is not hex, so no key starts there
	}
	// Invariant: every key that starts before i has been reported, buf[i-1]
	// is not hex (or i is the start of the input), and buf[i:known] is hex.
	known := i
	for {
		p := i + KeyLength - 1
		if p >= n {
			break
		}
		if class[buf[p]]&isHex == 0 {
			i = p + 1
			known = i
			continue
		}
		q := p - 1
		for q >= known && class[buf[q]]&isHex != 0 {
			q--
		}
		if q >= known {
			i = q + 1
			known = p + 1 // buf[q+1:p+1] was just seen to be hex
			continue
		}
		// buf[i:p+1] is hex: find the end of the run.
		e := p + 1
		for e < n && class[buf[e]]&isHex != 0 {
			e++
		}
		if e == n && !eof {
			if e-i > KeyLength+2 {
				b.line += bytes.Count(buf[counted:], newline)
				b.skipHex = true
				return 0, 0
			}
			break // the run may go on in the next block
		}
		if k := candidate(buf, i, e); k >= 0 {
			if masked, ok := checkKey(buf[k : k+KeyLength]); ok {
				b.line += bytes.Count(buf[counted:k], newline)
				counted = k
				b.found(b.line, masked)
			}
		}
		i = e + 1 // buf[e] is not hex
		known = i
	}
	if eof {
		b.line += bytes.Count(buf[counted:], newline)
		return 0, 0
	}
	// Keep buf[i:] (i <= n), undecided, and the 2 bytes before it, which
	// decide the left boundary of a key that starts at i.
	b.line += bytes.Count(buf[counted:i], newline)
	from := max(i-2, 0)
	carry = copy(buf, buf[from:])
	return carry, i - from
}

var newline = []byte{'\n'}

// candidate returns where a key starts in the maximal hex run buf[i:e], or -1
// when the run cannot hold one. buf[i-1] and buf[e], when they exist, are not
// hex; i == 0 is the start of the input.
func candidate(buf []byte, i, e int) int {
	if e < len(buf) && class[buf[e]]&isAlnum != 0 {
		return -1
	}
	switch e - i {
	case KeyLength:
		if i == 0 {
			return i
		}
		c := buf[i-1]
		if class[c]&isAlnum == 0 {
			return i
		}
		if (c == 'n' || c == 'r' || c == 't') && i >= 2 && buf[i-2] == '\\' {
			return i
		}
	case KeyLength + 2:
		if i >= 1 && buf[i-1] == '%' {
			return i + 2
		}
	}
	return -1
}

// slicing8 holds the tables of CRC-32 (IEEE) by slicing-by-8.
var slicing8 = func() (t [8][256]uint32) {
	t[0] = *crc32.MakeTable(crc32.IEEE)
	for i := range 256 {
		c := t[0][i]
		for k := 1; k < 8; k++ {
			c = t[0][c&0xff] ^ c>>8
			t[k][i] = c
		}
	}
	return t
}()

// lower sets the 0x20 bit of 8 bytes at once: it lower-cases A-F and leaves
// 0-9 and a-f as they are.
const lower = 0x2020202020202020

// checkKey reports whether the 64 hex characters in k carry a valid checksum,
// and returns the masked key in lower case. It lower-cases and computes the
// CRC-32 (IEEE) 8 bytes at a time, in one pass: it runs for every 64-hex
// string in the input (every SHA-256 sum), so it has to be cheap.
func checkKey(k []byte) (string, bool) {
	k = k[:KeyLength]
	crc := ^uint32(0)
	for j := 0; j < bodyLength; j += 8 {
		w := binary.LittleEndian.Uint64(k[j:]) | lower
		lo := uint32(w) ^ crc
		hi := uint32(w >> 32)
		crc = slicing8[0][hi>>24] ^ slicing8[1][hi>>16&0xff] ^ slicing8[2][hi>>8&0xff] ^ slicing8[3][hi&0xff] ^
			slicing8[4][lo>>24] ^ slicing8[5][lo>>16&0xff] ^ slicing8[6][lo>>8&0xff] ^ slicing8[7][lo&0xff]
	}
	crc = ^crc
	var want uint32
	for _, c := range k[bodyLength:] {
		c |= 0x20
		v := c - '0'
		if c >= 'a' {
			v = c - 'a' + 10
		}
		want = want<<4 | uint32(v)
	}
	if crc != want {
		return "", false
	}
	var m [2*maskEdge + 3]byte
	for j := range maskEdge {
		m[j] = k[j] | 0x20
		m[maskEdge+3+j] = k[KeyLength-maskEdge+j] | 0x20
	}
	copy(m[maskEdge:], "...")
	return string(m[:]), true
}
