package licensing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// A list cursor is base64url (no padding) of 40 bytes: the position (the
// creation time in Unix nanoseconds, 8 bytes, and the 16 bytes of the key
// id) and the first 16 bytes of an HMAC-SHA256 over the organization id and
// the position, keyed with a key derived from the server's secret. A cursor
// is therefore only good for the organization it was made for, and a
// forged, altered or truncated one is refused before it reaches the store.
const (
	cursorPosLen = 8 + 16
	cursorMACLen = 16
	cursorLen    = 54 // base64.RawURLEncoding.EncodedLen(cursorPosLen + cursorMACLen)
)

var errBadCursor = &Error{Code: CodeInvalid, Message: "cursor is not one this server made"}

// newCursorKey derives the cursors' MAC key from secret (the pepper, or
// the Ed25519 signing key's seed when the Service has no pepper), so that
// servers sharing a store and that secret accept each other's cursors and
// a restart does not void them.
func newCursorKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("licensing-list-cursor-v1"))
	return m.Sum(nil)
}

func (s *Service) cursorMAC(orgID string, pos []byte) []byte {
	m := hmac.New(sha256.New, s.cursorKey)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(orgID)))
	m.Write(n[:])
	m.Write([]byte(orgID))
	m.Write(pos)
	return m.Sum(nil)[:cursorMACLen]
}

// formatCursor encodes c, a position in orgID's list, as an opaque string.
func (s *Service) formatCursor(orgID string, c KeyCursor) string {
	var b [cursorPosLen + cursorMACLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.CreatedAt.UnixNano()))
	id, _ := uuid.Parse(c.ID)
	copy(b[8:cursorPosLen], id[:])
	copy(b[cursorPosLen:], s.cursorMAC(orgID, b[:cursorPosLen]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// parseCursor returns the position that cursor s names in orgID's list ("":
// the start). A cursor formatCursor did not make for orgID is errBadCursor;
// the MAC is compared in constant time.
func (s *Service) parseCursor(orgID, str string) (KeyCursor, error) {
	if str == "" {
		return KeyCursor{}, nil
	}
	if len(str) != cursorLen {
		return KeyCursor{}, errBadCursor
	}
	// Strict: the unused low bits of the last character must be zero, so
	// that each cursor has one spelling and an altered one is refused.
	b, err := base64.RawURLEncoding.Strict().DecodeString(str)
	if err != nil || len(b) != cursorPosLen+cursorMACLen {
		return KeyCursor{}, errBadCursor
	}
	if !hmac.Equal(b[cursorPosLen:], s.cursorMAC(orgID, b[:cursorPosLen])) {
		return KeyCursor{}, errBadCursor
	}
	id, err := uuid.FromBytes(b[8:cursorPosLen])
	if err != nil {
		return KeyCursor{}, errBadCursor
	}
	return KeyCursor{CreatedAt: time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))).UTC(), ID: id.String()}, nil
}
