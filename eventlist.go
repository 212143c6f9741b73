package licensing

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"

	"github.com/licensekit/licensing/internal/wire"
)

// Event page limits (Service.Events).
const (
	DefaultEventLimit = 50  // events a page holds when EventsInput.Limit is 0
	MaxEventLimit     = 500 // the most a page may hold
)

// EventsInput selects a page of an organization's events (Service.Events).
type EventsInput struct {
	// Cursor is "" for the first page, else an EventPage.Next.
	Cursor string
	// Limit is how many events the page holds at most: 1 to MaxEventLimit,
	// 0 for DefaultEventLimit.
	Limit int
	// KeyID, when set, keeps one key's events only.
	KeyID string
	// Type, when set, keeps one type's events only (one of the EventType
	// constants).
	Type EventType
}

// EventPage is one page of an organization's events, newest first.
type EventPage struct {
	Events []Event
	// Next is the cursor of the following page, "" after the last one.
	Next string
}

// ErrNoEventLog is the answer of Service.Events when Config.Store does not
// implement EventLog: the events were never kept.
var ErrNoEventLog = &Error{Code: CodeNotImplemented, Message: "This server's store keeps no event log; use a store that implements licensing.EventLog (the memory, file and PostgreSQL stores do)."}

// eventTypes are the types Service.Events filters on.
var eventTypes = map[EventType]bool{
	EventKeyCreated: true, EventKeyRevoked: true, EventKeyValidated: true, EventValidationFailed: true,
	EventKeyShared: true, EventTokenIssued: true, EventKeyRotated: true, EventKeyRenewed: true,
	EventKeyExpired: true, EventKeyActivated: true, EventSeatLimitReached: true, EventKeyExpiring: true,
	EventInstanceReleased: true,
}

// ValidEventType reports whether t is one of the EventType constants.
func ValidEventType(t EventType) bool { return eventTypes[t] }

// Events returns a page of the actor's organization's events from the
// store's EventLog, newest first. The actor must be the owner (plan and
// active flag are not checked, as for ListKeys). A limit outside 0 to
// MaxEventLimit, a KeyID that is not a key id, a Type that is not an
// EventType, and a cursor Events did not make for this organization give
// an error of code CodeInvalid; a Store without an event log ErrNoEventLog.
// A KeyID of no key of the organization gives an empty page.
func (s *Service) Events(ctx context.Context, a Actor, in EventsInput) (EventPage, error) {
	if in.Limit < 0 || in.Limit > MaxEventLimit {
		return EventPage{}, &Error{Code: CodeInvalid, Message: "limit must be a whole number from 1 to 500"}
	}
	if in.Limit == 0 {
		in.Limit = DefaultEventLimit
	}
	if in.KeyID != "" {
		in.KeyID = strings.ToLower(in.KeyID)
		if !ValidKeyID(in.KeyID) {
			return EventPage{}, &Error{Code: CodeInvalid, Message: "keyId must be a license key's id (a UUID)"}
		}
	}
	if in.Type != "" && !ValidEventType(in.Type) {
		return EventPage{}, &Error{Code: CodeInvalid, Message: "type must be an event type, such as key.created or key.revoked"}
	}
	org, err := s.owner(ctx, a, false)
	if err != nil {
		return EventPage{}, err
	}
	if s.elog == nil {
		return EventPage{}, ErrNoEventLog
	}
	before, err := s.parseEventCursor(org.ID, in.Cursor)
	if err != nil {
		return EventPage{}, err
	}
	events, err := s.elog.Events(ctx, org.ID, EventQuery{Before: before, KeyID: in.KeyID, Type: in.Type, Limit: in.Limit + 1})
	if err != nil {
		return EventPage{}, wrapErr("list events", err)
	}
	page := EventPage{Events: events}
	if len(events) > in.Limit {
		page.Events = events[:in.Limit]
		page.Next = s.formatEventCursor(org.ID, page.Events[in.Limit-1].Seq)
	}
	return page, nil
}

// An event cursor is base64url (no padding) of 24 bytes: the Seq the next
// page starts below (8 bytes) and the first 16 bytes of the list cursors'
// HMAC (cursor.go) over the organization and a position that cannot be a
// key list's (a 'e' byte and the Seq), so neither cursor passes for the
// other.
const eventCursorLen = 32 // base64.RawURLEncoding.EncodedLen(8 + cursorMACLen)

func eventCursorPos(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{'e'}, seq)
}

func (s *Service) formatEventCursor(orgID string, seq uint64) string {
	b := binary.BigEndian.AppendUint64(nil, seq)
	b = append(b, s.cursorMAC(orgID, eventCursorPos(seq))...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseEventCursor returns the Seq a cursor names (0 for "": from the
// newest); one formatEventCursor did not make for orgID is errBadCursor.
func (s *Service) parseEventCursor(orgID, str string) (uint64, error) {
	if str == "" {
		return 0, nil
	}
	if len(str) != eventCursorLen {
		return 0, errBadCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(str)
	if err != nil || len(b) != 8+cursorMACLen {
		return 0, errBadCursor
	}
	seq := binary.BigEndian.Uint64(b[:8])
	if !hmac.Equal(b[8:], s.cursorMAC(orgID, eventCursorPos(seq))) || seq == 0 {
		return 0, errBadCursor
	}
	return seq, nil
}

// wire returns e as the API writes it (internal/wire.Event): the
// object GET /api/v1/licensing/events lists and webhook deliveries carry.
func (e Event) wire() wire.Event {
	w := wire.Event{ID: e.ID, Type: string(e.Type), KeyID: optString(e.KeyID), MaskedKey: optString(e.MaskedKey),
		Actor: optString(e.UserID), OccurredAt: wire.Time(e.Time)}
	w.Data.Outcome = string(e.Outcome)
	w.Data.InstanceID = e.InstanceID
	w.Data.InstanceCount = e.InstanceCount
	w.Data.RotatedTo = e.RotatedTo
	w.Data.MaxInstances = e.MaxInstances
	switch e.Type {
	case EventKeyRenewed, EventKeyRotated, EventKeyExpired, EventKeyExpiring:
		t := wire.Time(e.ExpiresAt) // null: never
		w.Data.ExpiresAt = &t
	}
	return w
}

// MarshalJSON encodes e as the API's event object, the one GET
// /api/v1/licensing/events lists and a webhook delivery carries:
// {"id", "type", "keyId", "maskedKey", "actor", "occurredAt", "data"}, with
// the fields of its type in data (docs/API.md, "Events").
func (e Event) MarshalJSON() ([]byte, error) { return json.Marshal(e.wire()) }
