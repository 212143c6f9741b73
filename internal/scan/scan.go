// Package scan finds license keys in text: strings that are well-formed keys
// of this module (64 hexadecimal characters whose last 8 are the CRC-32 of the
// first 56) and so were most likely issued by a licensing server. It is what
// `licensing-server scan` runs in a CI pipeline or a pre-commit hook to stop a
// key from being committed or pasted somewhere it should not be.
//
// # What counts as a key
//
// A key is any 64 consecutive hex characters (either case) whose checksum is
// valid, whatever surrounds them: no boundary is required, so a key is found
// inside quotes, JSON, URLs or `KEY=...`, but also after an escape that ends
// in a hex digit or a letter (Go's `\u003e`, JavaScript's `\x3d`,
// quoted-printable `=3D`, URL `%3D`), after an ANSI colour sequence
// (`ESC[1;32m`), glued to an identifier, or inside a longer hex string: every
// 64-character window of a hex run is checked. The checksum makes a random
// window pass only once in 2^32, so a SHA-256 sum is checked once and a
// SHA-512 sum 65 times, and neither is reported in practice. Lines are
// counted by '\n', so CRLF files number their lines as editors do. Keys split
// across lines are not keys.
//
// Text in UTF-16 (as Windows PowerShell 5 writes it) is read as such when it
// starts with a byte order mark; see Scanner.Reader.
//
// # Security
//
// Findings carry only the masked key (its first and last 8 characters, as the
// server shows them), never the key itself, and every path in a Finding or in
// an error from Paths has its keys masked too (a key in a file or directory
// name is itself reported), so the scanner's output can go into CI logs. A
// path that is not plain printable text is printed quoted (QuoteName), so a
// file name can neither forge a finding line nor send escape sequences to a
// terminal. The scanner never follows a symbolic link it finds while
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
	sumLength  = KeyLength - bodyLength
	maskEdge   = 8
	// maxCarry is the most a block passes on to the next: the end of a hex
	// run too short to hold a key yet.
	maxCarry = KeyLength - 1
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
const isHex = 1 // 0-9 a-f A-F

var class = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = isHex
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = isHex, isHex
	}
	return t
}()

// Reader reads r to its end and calls found, in order, for each key in it,
// with the 1-based number of the line the key is on and the key masked: its
// first 8 characters, "...", and its last 8 characters, in lower case (as the
// server shows a key after creation). It returns the first read error other
// than io.EOF; keys found before the error have been reported.
//
// Input that starts with a UTF-16 byte order mark (FF FE, little-endian, as
// Windows PowerShell 5 writes files; or FE FF, big-endian) is read as UTF-16:
// keys written in it are found, and its lines are counted by U+000A; its
// bytes are also scanned as they are, so an ASCII key after such a mark is
// found too (its line counted by bytes). UTF-16 without a byte order mark is
// read as bytes, and a key in it is not found.
func (s *Scanner) Reader(r io.Reader, found func(line int, masked string)) error {
	if found == nil {
		return errNilFound
	}
	var head [2]byte
	n, err := io.ReadFull(r, head[:])
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return nil // fewer than 2 bytes hold no key
	case err != nil:
		return err
	case head == [2]byte{0xff, 0xfe} || head == [2]byte{0xfe, 0xff}:
		// Read as UTF-16, and the same bytes as they are too: two bytes
		// must not hide an ASCII key (a binary header, a UTF-8 line
		// appended to a UTF-16 file).
		r = &utf16Reader{r: r, bigEndian: head[0] == 0xfe, raw: blockScanner{line: 1, found: found},
			rawBuf: append(make([]byte, 0, MinBlockSize), head[:]...)}
	default:
		r = io.MultiReader(bytes.NewReader(head[:n]), r)
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
	carry := 0 // bytes kept at the front of buf
	for {
		n, err := r.Read(s.buf[carry:])
		if n > 0 {
			carry = b.block(s.buf[:carry+n], false)
		}
		if err == io.EOF {
			b.block(s.buf[:carry], true)
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// utf16Reader reads UTF-16 text as bytes the scanner can search: each code
// unit below 0x80 as that ASCII byte, any other as 0x80 (not hex, not a
// newline).
type utf16Reader struct {
	r         io.Reader
	bigEndian bool
	buf       []byte
	odd       int // 1 when buf[0] holds the first byte of a code unit

	raw    blockScanner // the same bytes scanned as they are
	rawBuf []byte       // raw's carry, then the bytes read since
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if want := min(2*len(p)+1, 2*DefaultBlockSize+1); len(u.buf) < want {
		buf := make([]byte, want)
		buf[0] = u.buf0() // the kept first byte of a code unit, if any
		u.buf = buf
	}
	limit := min(len(u.buf), 2*len(p)+u.odd)
	n, err := u.r.Read(u.buf[u.odd:limit])
	u.scanRaw(u.buf[u.odd:u.odd+n], err == io.EOF)
	n += u.odd
	lo, hi := 0, 1
	if u.bigEndian {
		lo, hi = 1, 0
	}
	w := 0
	for j := 0; j+1 < n; j += 2 {
		c := u.buf[j+lo]
		if u.buf[j+hi] != 0 || c >= 0x80 {
			c = 0x80
		}
		p[w] = c
		w++
	}
	u.odd = n & 1
	if u.odd == 1 {
		u.buf[0] = u.buf[n-1]
	}
	return w, err
}

// buf0 is buf's first byte, 0 when there is none.
func (u *utf16Reader) buf0() byte {
	if len(u.buf) == 0 {
		return 0
	}
	return u.buf[0]
}

// scanRaw scans the bytes read, as they are, for ASCII keys.
func (u *utf16Reader) scanRaw(b []byte, eof bool) {
	u.rawBuf = append(u.rawBuf, b...)
	carry := u.raw.block(u.rawBuf, eof)
	u.rawBuf = u.rawBuf[:carry]
	if eof {
		u.rawBuf = u.rawBuf[:0]
	}
}

// blockScanner is the state carried from one block to the next.
type blockScanner struct {
	line  int // line number at the first byte not yet counted
	found func(line int, masked string)
}

// block reports the keys that lie wholly in buf, moves the bytes it cannot
// decide yet (the last, at most 63, bytes of a hex run that reaches the end of
// buf) to the front of buf, and returns how many it moved. With eof, the end
// of buf is the end of the input and nothing is kept.
//
// Every window of 64 hex characters is a candidate, whatever is around it.
// The search skips: a window that starts at or after i covers buf[i+63], so
// when that byte is not hex no window starts in buf[i:i+64], and scanning
// resumes after it. Most text is skipped 64 bytes at a time; a byte of a hex
// run shorter than 64 is read about once, and a longer run costs a checksum
// per window.
func (b *blockScanner) block(buf []byte, eof bool) (carry int) {
	n := len(buf)
	i, counted := 0, 0
	// Invariant: every key that starts before i has been reported, and
	// buf[i:known] is hex.
	known := 0
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
		// buf[i:p+1] is hex: check every window of the run. The first
		// checksum is computed in full, each next one by rolling the
		// window on by a byte.
		reg := ^bodyCRC(buf[i:])
		want := sumOf(buf[i+bodyLength:])
		for {
			if ^reg == want {
				b.line += bytes.Count(buf[counted:i], newline)
				counted = i
				b.found(b.line, mask(buf[i:i+KeyLength]))
			}
			p = i + KeyLength
			if p >= n || class[buf[p]]&isHex == 0 {
				i++
				break
			}
			reg = slicing8[0][byte(reg)^(buf[i+bodyLength]|0x20)] ^ reg>>8 ^ rollOut[buf[i]|0x20]
			want = want<<4 | uint32(nibble[buf[p]])
			i++
		}
		if p >= n {
			break // buf[i:] is hex: the run may go on in the next block
		}
		i = p + 1
		known = i
	}
	if eof {
		b.line += bytes.Count(buf[counted:], newline)
		return 0
	}
	// Keep buf[i:] (fewer than 64 bytes): a key may start there and end in
	// the next block.
	b.line += bytes.Count(buf[counted:i], newline)
	return copy(buf, buf[i:])
}

var newline = []byte{'\n'}

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

// rollOut[c] takes the body's first character c out of the CRC register
// when the window moves on by a byte: the register of body[1:57] (from the
// initial value) is the register of body[0:56] stepped with body[56], xor
// rollOut[body[0]]. A CRC register is linear in the bytes and the initial
// value, so rollOut[c] is what c contributes after 56 more bytes, plus the
// initial value's contribution after 57 bytes and after 56.
var rollOut = func() (t [256]uint32) {
	zeros := func(reg uint32, n int) uint32 {
		for range n {
			reg = slicing8[0][byte(reg)] ^ reg>>8
		}
		return reg
	}
	init := zeros(^uint32(0), bodyLength+1) ^ zeros(^uint32(0), bodyLength)
	for c := range 256 {
		t[c] = zeros(slicing8[0][c], bodyLength) ^ init
	}
	return t
}()

// nibble is the value of each hex digit.
var nibble = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case '0' <= c && c <= '9':
			t[c] = uint8(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = uint8(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			t[c] = uint8(c - 'A' + 10)
		}
	}
	return t
}()

// bodyCRC returns the CRC-32 (IEEE) of the 56 hex characters at the start of
// k, lower-cased. It lower-cases and computes 8 bytes at a time, in one pass:
// it runs for every hex run of 64 or more characters in the input (every
// SHA-256 sum), so it has to be cheap.
func bodyCRC(k []byte) uint32 {
	k = k[:bodyLength]
	crc := ^uint32(0)
	for j := 0; j < bodyLength; j += 8 {
		w := binary.LittleEndian.Uint64(k[j:]) | lower
		lo := uint32(w) ^ crc
		hi := uint32(w >> 32)
		crc = slicing8[0][hi>>24] ^ slicing8[1][hi>>16&0xff] ^ slicing8[2][hi>>8&0xff] ^ slicing8[3][hi&0xff] ^
			slicing8[4][lo>>24] ^ slicing8[5][lo>>16&0xff] ^ slicing8[6][lo>>8&0xff] ^ slicing8[7][lo&0xff]
	}
	return ^crc
}

// sumOf returns the value of the 8 hex characters at the start of k.
func sumOf(k []byte) uint32 {
	var v uint32
	for _, c := range k[:sumLength] {
		v = v<<4 | uint32(nibble[c])
	}
	return v
}

// mask returns the 64 hex characters in k masked, in lower case.
func mask(k []byte) string {
	k = k[:KeyLength]
	var m [2*maskEdge + 3]byte
	for j := range maskEdge {
		m[j] = k[j] | 0x20
		m[maskEdge+3+j] = k[KeyLength-maskEdge+j] | 0x20
	}
	copy(m[maskEdge:], "...")
	return string(m[:])
}
