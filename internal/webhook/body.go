package webhook

import (
	"encoding/json"

	"github.com/licensekit/licensing"
)

// EventBody is the JSON body of e's deliveries: the API's event object
// (licensing.Event's MarshalJSON, wire.Event), the one GET
// /api/v1/licensing/events lists.
func EventBody(e licensing.Event) ([]byte, error) {
	return json.Marshal(e)
}
