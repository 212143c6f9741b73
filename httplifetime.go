package licensing

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

// The routes of a key's lifetime: PATCH /keys/{id} (expiry) and
// POST /keys/{id}/rotate.

var errPatchEmpty = &Error{Code: CodeInvalid, Message: "Send at least one field to change: expiresAt, maxInstances."}

// parseExpiresAt reads an expiresAt field: absent or null is the zero time
// (never), else an RFC 3339 time. A time that is the zero time
// (0001-01-01T00:00:00Z, however written) is out of range, as any time
// before 1970 is: the Service would take it for never.
func parseExpiresAt(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return time.Time{}, nil
	}
	var t wire.Time
	if err := json.Unmarshal(raw, &t); err != nil {
		return time.Time{}, &Error{Code: CodeInvalid, Message: "expiresAt must be a time such as 2026-02-20T10:30:00+00:00 (RFC 3339), or null for never"}
	}
	if time.Time(t).IsZero() {
		return time.Time{}, ErrInvalidExpiry
	}
	return time.Time(t), nil
}

// fieldsOf decodes a JSON object body into its fields and refuses any
// field not in allowed, naming it when it looks like a field name.
func (h *Handler) fieldsOf(w http.ResponseWriter, r *http.Request, allowed ...string) (map[string]json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := h.decode(w, r, &fields); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if slices.Contains(allowed, name) {
			continue
		}
		what := "an unknown field"
		if isFieldName(name) { // never echo a long or odd string, a pasted key among them
			what = "unknown field " + strconv.Quote(name)
		}
		return nil, &Error{Code: CodeInvalid, Message: "The body has " + what + "; this route accepts " + strings.Join(allowed, ", ") + "."}
	}
	return fields, nil
}

// patchKey answers PATCH /keys/{id}: {"expiresAt": time | null,
// "maxInstances": 1..1000 | null}, either or both, with the key as the
// list shows it. Both fields are read before either is written.
func (h *Handler) patchKey(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	fields, err := h.fieldsOf(w, r, "expiresAt", "maxInstances")
	if err == nil && len(fields) == 0 {
		err = errPatchEmpty
	}
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	expiresAt, err := parseExpiresAt(fields["expiresAt"])
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	maxInstances, err := parseMaxInstances(fields["maxInstances"])
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	var k Key
	if _, ok := fields["maxInstances"]; ok {
		if k, err = h.svc.SetMaxInstances(r.Context(), a, r.PathValue("id"), maxInstances); err != nil {
			h.fail(w, r, reply{}, err)
			return
		}
	}
	if _, ok := fields["expiresAt"]; ok {
		if k, err = h.svc.SetKeyExpiry(r.Context(), a, r.PathValue("id"), expiresAt); err != nil {
			h.fail(w, r, reply{}, err)
			return
		}
	}
	b, err := appendListedKey(nil, k)
	if err != nil {
		h.fail(w, r, reply{}, &Error{Code: CodeInternal, Message: "Internal error.", Err: err})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.write(w, reply{}, http.StatusOK, append(b, '\n'))
}

var errOverlap = &Error{Code: CodeInvalid, Message: "overlapHours must be a whole number from 0 to 2160 (90 days); the default is 168 (7 days)"}

// rotateKey answers POST /keys/{id}/rotate: body optional,
// {"overlapHours": N}; 201 with the new key, once, as create answers it,
// plus rotatedFrom.
func (h *Handler) rotateKey(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	fields, err := h.fieldsOf(w, r, "overlapHours")
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	overlap := defaultRotationOverlap
	if raw, ok := fields["overlapHours"]; ok && !bytes.Equal(raw, []byte("null")) {
		n, err := strconv.Atoi(string(raw)) // a whole number: no fraction, exponent or quotes
		if err != nil || n < 0 || n > int(maxRotationOverlap/time.Hour) {
			h.fail(w, r, reply{}, errOverlap)
			return
		}
		overlap = time.Duration(n) * time.Hour
	}
	created, old, err := h.svc.RotateKey(r.Context(), a, r.PathValue("id"), overlap)
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.respond(w, reply{}, http.StatusCreated, struct {
		createResponse
		RotatedFrom string `json:"rotatedFrom"`
	}{createAnswer(created), old.ID})
}
