package licensing

import (
	"encoding/json"
	"net/http"

	"github.com/licensekit/licensing/internal/wire"
)

type createRequest struct {
	InstanceName string          `json:"instanceName"`
	ExpiresAt    json.RawMessage `json:"expiresAt"`    // parsed by parseExpiresAt, which names the field
	MaxInstances json.RawMessage `json:"maxInstances"` // parsed by parseMaxInstances
}

type createResponse struct {
	ID           string    `json:"id"`
	LicenseKey   string    `json:"licenseKey"`
	InstanceName *string   `json:"instanceName"`
	Active       bool      `json:"active"`
	CreatedAt    wire.Time `json:"createdAt"`
	ExpiresAt    wire.Time `json:"expiresAt"`    // null: never
	MaxInstances *int      `json:"maxInstances"` // null: none of its own
}

func createAnswer(c CreatedKey) createResponse {
	return createResponse{
		ID:           c.Key.ID,
		LicenseKey:   c.LicenseKey,
		InstanceName: optString(c.Key.InstanceName),
		Active:       c.Key.Active,
		CreatedAt:    wire.Time(c.Key.CreatedAt),
		ExpiresAt:    wire.Time(c.Key.ExpiresAt),
		MaxInstances: optInt(c.Key.MaxInstances),
	}
}

func (h *Handler) createKey(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	var req createRequest
	if err := h.decode(w, r, &req); err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	expiresAt, err := parseExpiresAt(req.ExpiresAt)
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	maxInstances, err := parseMaxInstances(req.MaxInstances)
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	created, err := h.svc.CreateKey(r.Context(), a, CreateKeyInput{InstanceName: req.InstanceName, ExpiresAt: expiresAt, MaxInstances: maxInstances})
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.respond(w, reply{}, http.StatusCreated, createAnswer(created))
}

func (h *Handler) revokeKey(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	if err := h.svc.RevokeKey(r.Context(), a, r.PathValue("id")); err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	h.respond(w, reply{}, http.StatusOK, struct {
		Status string `json:"status"`
	}{"revoked"})
}

func (h *Handler) issueToken(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	tok, err := h.svc.IssueToken(r.Context(), a, r.PathValue("id"), r.URL.Query().Get("alg"))
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.respond(w, reply{}, http.StatusOK, struct {
		JWT       string    `json:"jwt"`
		ExpiresAt wire.Time `json:"expiresAt"`
		Plan      string    `json:"plan"`
	}{tok.JWT, wire.Time(tok.ExpiresAt), tok.Plan})
}
