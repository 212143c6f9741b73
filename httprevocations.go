package licensing

import (
	"net/http"
	"strings"

	"github.com/licensekit/licensing/internal/wire"
)

// signedAnswer is the signature of a revocation list's plain answer for
// one Licensing-Date.
type signedAnswer struct{ date, sig string }

// revocations answers GET /revocations?org=<id>[&nonce=<n>] with the signed
// list of the organization's revoked key ids (the jti of their tokens). The
// list is encoded once per change and served from memory with an ETag; a
// request without a nonce whose If-None-Match names it gets 304. A list
// over largeAnswerBytes is a large answer (largeanswers.go).
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
	l, err := h.svc.revocationList(r.Context(), org)
	if err != nil {
		h.fail(w, r, rp, err)
		return
	}
	// An answer with a nonce is a different representation (and a client
	// that sends one wants a fresh signature): no ETag for it. The tag is
	// set on the 304 and the 200 only, never on an answer (a 503) that
	// does not hold the list it names.
	if nonce == "" && etagMatches(r.Header.Get("If-None-Match"), l.etag) {
		w.Header().Set("ETag", l.etag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	large := len(l.answer) > largeAnswerBytes
	// HEAD sends no body: without a nonce (whose answer is copied and
	// signed whole) it is as cheap as a small answer and takes no slot.
	if large && (nonce != "" || r.Method != http.MethodHead) {
		release, ok := h.takeLargeSlot(w, r, rp)
		if !ok {
			return
		}
		defer release()
	}
	if nonce != "" {
		// json.Marshal of wire.RevocationList with Nonce: the same bytes
		// with ,"nonce":"..." before the closing brace.
		n := len(l.answer) - len("}\n")
		b := make([]byte, 0, len(l.answer)+len(`,"nonce":""`)+2*len(nonce))
		b = append(b, l.answer[:n]...)
		b = append(b, `,"nonce":`...)
		b = appendJSONString(b, nonce)
		b = append(b, "}\n"...)
		h.writeHeader(w, rp, http.StatusOK, b)
		h.writeBody(r, w, b, large)
		return
	}
	date := h.svc.cfg.Now().UTC().Format(http.TimeFormat)
	s := l.signed.Load()
	if s == nil || s.date != date {
		s = &signedAnswer{date: date, sig: h.svc.cfg.Signing.signAnswer(http.StatusOK, date, l.answer)}
		l.signed.Store(s)
	}
	hdr := w.Header()
	hdr["Content-Type"] = headerJSON
	hdr["X-Content-Type-Options"] = headerNosniff
	hdr.Set("Date", date)
	hdr.Set(wire.SignedDateHeader, date)
	hdr.Set(signatureHeader, s.sig)
	hdr.Set("ETag", l.etag)
	w.WriteHeader(http.StatusOK)
	h.writeBody(r, w, l.answer, large)
}

// writeBody writes b, paced when it is a large answer; nothing for HEAD.
func (h *Handler) writeBody(r *http.Request, w http.ResponseWriter, b []byte, large bool) {
	if r.Method == http.MethodHead {
		return
	}
	if large {
		h.writePaced(r.Context(), w, b)
		return
	}
	w.Write(b)
}

// etagMatches reports whether an If-None-Match header value names etag:
// "*", or etag in its comma-separated list, compared weakly (a W/ prefix
// is ignored), as RFC 9110 section 13.1.2 says.
func etagMatches(header, etag string) bool {
	for header != "" {
		var t string
		t, header, _ = strings.Cut(header, ",")
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
