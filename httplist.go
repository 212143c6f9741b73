package licensing

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/licensekit/licensing/internal/wire"
)

type listedKey struct {
	ID              string             `json:"id"`
	LicenseKey      string             `json:"licenseKey"`
	InstanceName    *string            `json:"instanceName"`
	InstanceURL     *string            `json:"instanceUrl"`
	Active          bool               `json:"active"`
	LastValidatedAt wire.Time          `json:"lastValidatedAt"`
	ActivatedAt     wire.Time          `json:"activatedAt"`
	CreatedAt       wire.Time          `json:"createdAt"`
	InstanceMetrics map[string]float64 `json:"instanceMetrics"`
	LastViolations  []string           `json:"lastViolations"`
	ExpiresAt       wire.Time          `json:"expiresAt"`
	RotatedTo       *string            `json:"rotatedTo"`
	RotatedFrom     *string            `json:"rotatedFrom"`
	MaxInstances    *int               `json:"maxInstances"` // null: none of its own
}

// maxPageLimit bounds ?limit= on the list route.
const maxPageLimit = 1000

// listKeys answers every key, newest first, streamed a chunk at a time so
// that memory does not grow with the organization; with ?limit= (and
// ?cursor=) it answers one page and its nextCursor. An unpaged list of
// more than one chunk is a large answer (largeanswers.go).
func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	a, ok := h.actor(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	paged := q.Has("limit") || q.Has("cursor")
	limit := listChunk
	if paged {
		limit = 100
		if q.Has("limit") {
			n, err := strconv.Atoi(q.Get("limit"))
			if err != nil || n < 1 || n > maxPageLimit {
				h.fail(w, r, reply{}, &Error{Code: CodeInvalid, Message: "limit must be a whole number from 1 to 1000"})
				return
			}
			limit = n
		}
	}
	page, err := h.svc.ListKeys(r.Context(), a, q.Get("cursor"), limit)
	if err != nil {
		h.fail(w, r, reply{}, err)
		return
	}
	large := !paged && page.Next != ""        // more than one chunk
	if large && r.Method != http.MethodHead { // HEAD sends no body: no slot, no further chunks
		release, ok := h.takeLargeSlot(w, r, reply{})
		if !ok {
			return
		}
		defer release()
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	b := append(make([]byte, 0, 4096), `{"organizationId":`...)
	b = appendJSONString(b, page.OrganizationID)
	b = append(b, `,"organizationName":`...)
	b = appendJSONString(b, page.OrganizationName)
	b = append(b, `,"keys":[`...)
	first := true
	for {
		for _, k := range page.Keys {
			if !first {
				b = append(b, ',')
			}
			first = false
			if b, err = appendListedKey(b, k); err != nil {
				panic(http.ErrAbortHandler) // cannot happen for stored keys; never send half a list as whole
			}
		}
		if large {
			if err := h.pace.wait(r.Context(), len(b)); err != nil {
				panic(http.ErrAbortHandler) // the request went away: break the answer off
			}
		}
		if _, err := w.Write(b); err != nil {
			return
		}
		b = b[:0]
		if paged || page.Next == "" {
			break
		}
		if page, err = h.svc.ListKeys(r.Context(), a, page.Next, limit); err != nil {
			h.cfg.Logger.Error("licensing: list keys: aborted a streamed answer", "err", err)
			panic(http.ErrAbortHandler) // the status is sent: break the answer rather than end it well-formed
		}
	}
	b = append(b, ']')
	if paged {
		b = append(b, `,"nextCursor":`...)
		if page.Next == "" {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendQuote(b, page.Next)
		}
	}
	w.Write(append(b, "}\n"...))
}

func appendListedKey(b []byte, k Key) ([]byte, error) {
	j, err := json.Marshal(listedKey{
		ID:              k.ID,
		LicenseKey:      k.MaskedKey,
		InstanceName:    optString(k.InstanceName),
		InstanceURL:     optString(k.InstanceURL),
		Active:          k.Active,
		LastValidatedAt: wire.Time(k.LastValidatedAt),
		ActivatedAt:     wire.Time(k.ActivatedAt),
		CreatedAt:       wire.Time(k.CreatedAt),
		InstanceMetrics: k.LastMetrics,
		LastViolations:  k.LastViolations,
		ExpiresAt:       wire.Time(k.ExpiresAt),
		RotatedTo:       optString(k.RotatedTo),
		RotatedFrom:     optString(k.RotatedFrom),
		MaxInstances:    optInt(k.MaxInstances),
	})
	return append(b, j...), err
}
