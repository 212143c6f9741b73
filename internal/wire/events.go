package wire

// Event is one event of the log, as GET APIPrefix+PathEvents lists it and a
// webhook delivery carries it as its body, exactly these fields and in this
// order. KeyID, MaskedKey and Actor are null when the event has none (Actor:
// the owner who acted, null for what instances and the server did).
type Event struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	KeyID      *string   `json:"keyId"`
	MaskedKey  *string   `json:"maskedKey"`
	Actor      *string   `json:"actor"`
	OccurredAt Time      `json:"occurredAt"`
	Data       EventData `json:"data"`
}

// EventData holds an event's typed fields, those that apply to its type
// only (the others are left out): Outcome for key.validation_failed,
// InstanceID for the events of one instance, InstanceCount for key.shared,
// ExpiresAt for key.renewed, key.rotated, key.expired and key.expiring (null:
// the key never expires), RotatedTo for key.rotated, MaxInstances for
// key.seat_limit_reached.
type EventData struct {
	Outcome       string `json:"outcome,omitempty"`
	InstanceID    string `json:"instanceId,omitempty"`
	InstanceCount int    `json:"instanceCount,omitempty"`
	ExpiresAt     *Time  `json:"expiresAt,omitempty"` // a pointer to the zero Time encodes null
	RotatedTo     string `json:"rotatedTo,omitempty"`
	MaxInstances  int    `json:"maxInstances,omitempty"`
}

// EventsAnswer is the 200 answer of GET APIPrefix+PathEvents: a page of
// events, newest first, and the cursor of the next page (null after the
// last).
type EventsAnswer struct {
	Events     []Event `json:"events"`
	NextCursor *string `json:"nextCursor"`
}
