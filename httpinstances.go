package licensing

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/licensekit/licensing/internal/wire"
)

// The routes of a key's instances and seats: GET /keys/{id}/instances and
// DELETE /keys/{id}/instances/{instance}; maxInstances is set at create and
// through PATCH /keys/{id}.

// parseMaxInstances reads a maxInstances field: absent or null is 0 (none
// of the key's own), else a whole number from 1 to MaxInstancesLimit.
func parseMaxInstances(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	n, err := strconv.Atoi(string(raw)) // a whole number: no fraction, exponent or quotes
	if err != nil || n < 1 || n > MaxInstancesLimit {
		return 0, ErrInvalidMaxInstances
	}
	return n, nil
}

func optInt(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// listedInstance is an instance as GET /keys/{id}/instances shows it.
type listedInstance struct {
	ID           string             `json:"id"`
	InstanceName *string            `json:"instanceName"`
	InstanceURL  *string            `json:"instanceUrl"`
	FirstSeenAt  wire.Time          `json:"firstSeenAt"`
	LastSeenAt   wire.Time          `json:"lastSeenAt"`
	Metrics      map[string]float64 `json:"metrics"`
}

// listInstances answers GET /keys/{id}/instances: the instances that hold a
// seat, most recently seen first (at most MaxInstancesLimit of them).
func (h *Handler) listInstances(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	list, err := h.svc.Instances(r.Context(), a, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	out := make([]listedInstance, len(list))
	for i, in := range list {
		out[i] = listedInstance{ID: in.ID, InstanceName: optString(in.Name), InstanceURL: optString(in.URL),
			FirstSeenAt: wire.Time(in.FirstSeenAt), LastSeenAt: wire.Time(in.LastSeenAt), Metrics: in.Metrics}
	}
	w.Header().Set("Cache-Control", "no-store")
	h.respond(w, reply{}, http.StatusOK, struct {
		Instances []listedInstance `json:"instances"`
	}{out})
}

// releaseInstance answers DELETE /keys/{id}/instances/{instance}: the seat
// is free when it answers 200.
func (h *Handler) releaseInstance(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	if err := h.svc.ReleaseInstance(r.Context(), a, r.PathValue("id"), r.PathValue("instance")); err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	h.respond(w, reply{}, http.StatusOK, struct {
		Status string `json:"status"`
	}{"released"})
}
