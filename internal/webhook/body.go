package webhook

import (
	"encoding/json"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

// EventBody is the JSON body of e's deliveries: the API's event object
// (wire.Event), the one GET /api/v1/licensing/events lists.
//
// TODO(issue 20): json.Marshal(e) once licensing.Event marshals as
// wire.Event (the event log's branch); this is the same conversion.
func EventBody(e licensing.Event) ([]byte, error) {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	w := wire.Event{ID: e.ID, Type: string(e.Type), KeyID: opt(e.KeyID), MaskedKey: opt(e.MaskedKey),
		Actor: opt(e.UserID), OccurredAt: wire.Time(e.Time)}
	w.Data.Outcome = string(e.Outcome)
	w.Data.InstanceID = e.InstanceID
	w.Data.InstanceCount = e.InstanceCount
	w.Data.RotatedTo = e.RotatedTo
	w.Data.MaxInstances = e.MaxInstances
	switch e.Type {
	case licensing.EventKeyRenewed, licensing.EventKeyRotated, licensing.EventKeyExpired, licensing.EventKeyExpiring:
		t := wire.Time(e.ExpiresAt) // null: never
		w.Data.ExpiresAt = &t
	}
	return json.Marshal(w)
}
