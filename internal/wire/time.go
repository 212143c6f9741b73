package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// TimeLayout is the API's time format: UTC, seconds, a numeric offset
// ("2026-02-20T10:30:00+00:00"). It is an RFC 3339 layout.
const TimeLayout = "2006-01-02T15:04:05-07:00"

// Time is a time.Time as the API writes it. It encodes as a JSON string in
// TimeLayout, in UTC, or as null when zero; it decodes null (to zero) or any
// RFC 3339 string. Convert with Time(t) and time.Time(wt).
type Time time.Time

// TimeOf returns &Time(t), or nil when t is zero: for optional fields
// tagged omitempty, which are then left out rather than null.
func TimeOf(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	wt := Time(t)
	return &wt
}

// MarshalJSON writes t in TimeLayout in UTC, or null when t is zero.
func (t Time) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	b := make([]byte, 0, len(TimeLayout)+2)
	b = append(b, '"')
	b = tt.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"'), nil
}

// UnmarshalJSON reads null (the zero time) or an RFC 3339 string; anything
// else is an error.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("wire: time must be an RFC 3339 string or null")
	}
	tt, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return errors.New("wire: time must be an RFC 3339 string or null")
	}
	*t = Time(tt)
	return nil
}
