package licensing

import (
	"net/http"
	"strconv"

	"github.com/licensekit/licensing/internal/wire"
)

// listEvents answers a page of the organization's event log (Service.Events)
// as a wire.EventsAnswer: ?limit= (1 to 500, default 50), ?cursor= (a
// nextCursor), ?keyId=, ?type=.
func (h *Handler) listEvents(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	for _, name := range []string{"limit", "cursor", "keyId", "type"} {
		if len(q[name]) > 1 {
			h.fail(w, r, reply{}, &Error{Code: CodeInvalid, Message: name + " must be given at most once"})
			return
		}
	}
	in := EventsInput{Cursor: q.Get("cursor"), KeyID: q.Get("keyId"), Type: EventType(q.Get("type"))}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > MaxEventLimit {
			h.fail(w, r, reply{}, &Error{Code: CodeInvalid, Message: "limit must be a whole number from 1 to 500"})
			return
		}
		in.Limit = n
	}
	page, err := h.svc.Events(r.Context(), a, in)
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	ans := wire.EventsAnswer{Events: make([]wire.Event, len(page.Events))}
	for i, e := range page.Events {
		ans.Events[i] = e.wire()
	}
	if page.Next != "" {
		ans.NextCursor = &page.Next
	}
	w.Header().Set("Cache-Control", "no-store")
	h.respond(w, reply{}, http.StatusOK, ans)
}
