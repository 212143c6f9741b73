package licensing

import (
	"net/http"
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
