package webhook

import (
	"encoding/json"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

// EventBody is the JSON body of e's deliveries: e as wire.Event, the
// object GET /api/v1/licensing/events lists.
func EventBody(e licensing.Event) ([]byte, error) {
	w := wire.Event{
		ID:             e.ID,
		Type:           string(e.Type),
		OrganizationID: e.OrganizationID,
		KeyID:          e.KeyID,
		MaskedKey:      e.MaskedKey,
		OccurredAt:     wire.Time(e.Time),
		Data: wire.EventData{
			Outcome:       string(e.Outcome),
			InstanceCount: e.InstanceCount,
			ExpiresAt:     wire.TimeOf(e.ExpiresAt),
			RotatedTo:     e.RotatedTo,
			InstanceID:    e.InstanceID,
			MaxInstances:  e.MaxInstances,
		},
	}
	if e.UserID != "" {
		w.Actor = &e.UserID
	}
	return json.Marshal(w)
}
