package licensing

import (
	"fmt"
	"net/http"

	"github.com/licensekit/licensing/internal/wire"
)

func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	w.Header()["Cache-Control"] = headerNoStore
	var req wire.ValidateRequest
	if err := h.decode(w, r, &req); err != nil {
		if h.allow(w, r, reply{validate: true}) {
			h.fail(w, r, reply{validate: true}, err)
		}
		return
	}
	rp, nonceErr := signedReply(req.Nonce, true, false)
	if !h.allow(w, r, rp) {
		return
	}
	if nonceErr != nil {
		h.fail(w, r, rp, nonceErr)
		return
	}
	res, err := h.svc.ValidateKey(r.Context(), ValidateInput{LicenseKey: req.LicenseKey,
		InstanceName: req.InstanceName, InstanceURL: req.InstanceURL, InstanceID: req.InstanceID, Metrics: req.Metrics})
	if err != nil {
		rp.plan, rp.billingURL, rp.expiresAt = res.Plan, res.BillingURL, res.ExpiresAt
		h.fail(w, r, rp, err)
		return
	}
	out := wire.ValidateAnswer{
		Valid:            true,
		Plan:             res.Plan,
		Features:         res.Features,
		OrganizationID:   res.OrganizationID,
		OrganizationName: res.OrganizationName,
		Violations:       res.Violations,
		BillingURL:       res.BillingURL,
		Nonce:            rp.nonce,
	}
	out.CurrentPeriodEnd = wire.TimeOf(res.CurrentPeriodEnd)
	out.ExpiresAt = wire.TimeOf(res.ExpiresAt)
	if !res.TrialEndsAt.IsZero() {
		d := res.TrialDaysLeft
		out.TrialEndsAt, out.TrialDaysLeft = wire.TimeOf(res.TrialEndsAt), &d
	}
	buf := getBuf()
	defer putBuf(buf)
	b, err := appendValidateResponse(*buf, &out)
	if err != nil { // a plan feature JSON cannot hold (NaN, ±Inf)
		rp.validate = false // the Service has counted this validation already
		h.fail(w, r, rp, &Error{Code: CodeInternal, Message: "Internal error.", Err: fmt.Errorf("encode answer: %w", err)})
		return
	}
	*buf = append(b, '\n')
	h.write(w, rp, http.StatusOK, *buf)
}
