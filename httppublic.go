package licensing

import (
	"net/http"

	"github.com/licensekit/licensing/internal/wire"
)

func (h *Handler) publicKeys(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	h.write(w, reply{}, http.StatusOK, append(h.svc.cfg.Signing.JWKS(), '\n'))
}

// publicKeysPEM answers GET /public-keys.pem: the same keys as PEM blocks,
// RSA first (see SigningKeys.PublicKeysPEM).
func (h *Handler) publicKeysPEM(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header()["X-Content-Type-Options"] = headerNosniff
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(h.svc.cfg.Signing.PublicKeysPEM())
}

// revocations answers GET /revocations?org=<id>[&nonce=<n>] with the signed
// list of the organization's revoked key ids (the jti of their tokens).
func (h *Handler) revocations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	org, nonce := q.Get("org"), q.Get("nonce")
	rp, nonceErr := signedReply(nonce, false, true) // revocation lists are always signed
	if !h.allow(w, r, rp) {
		return
	}
	if nonceErr != nil {
		h.fail(w, r, rp, nonceErr)
		return
	}
	if org == "" {
		h.fail(w, r, rp, &Error{Code: CodeInvalid, Message: "org is required"})
		return
	}
	if !wire.IsText(org, wire.MaxOrgIDLength) {
		h.fail(w, r, rp, &Error{Code: CodeInvalid, Message: "org must be at most 255 characters without control or format characters"})
		return
	}
	ids, err := h.svc.RevokedKeyIDs(r.Context(), org)
	if err != nil {
		h.fail(w, r, rp, err)
		return
	}
	h.respond(w, rp, http.StatusOK, wire.RevocationList{OrganizationID: org, Revoked: ids, Nonce: rp.nonce})
}
