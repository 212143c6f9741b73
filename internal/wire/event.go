package wire

// Event is one event as GET APIPrefix+PathEvents lists it and as a webhook
// delivery carries it as its body, exactly these fields and in this order.
// Actor is the user who acted, null for what no user did (a validation, a
// reminder). Data holds the fields of the event's type, each left out when
// the type has none.
type Event struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	OrganizationID string    `json:"organizationId"`
	KeyID          string    `json:"keyId"`
	MaskedKey      string    `json:"maskedKey"`
	Actor          *string   `json:"actor"`
	OccurredAt     Time      `json:"occurredAt"`
	Data           EventData `json:"data"`
}

// EventData is the type-dependent part of an Event.
type EventData struct {
	Outcome       string `json:"outcome,omitempty"`       // key.validation_failed: why
	InstanceCount int    `json:"instanceCount,omitempty"` // key.shared: distinct instances
	ExpiresAt     *Time  `json:"expiresAt,omitempty"`     // key.renewed, key.expired, key.expiring, key.rotated
	RotatedTo     string `json:"rotatedTo,omitempty"`     // key.rotated: the new key's id
	InstanceID    string `json:"instanceId,omitempty"`    // key.shared, key.activated, key.seat_limit_reached, instance.released
	MaxInstances  int    `json:"maxInstances,omitempty"`  // key.seat_limit_reached: the limit reached
}
