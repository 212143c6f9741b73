package licensing

import (
	"context"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

// IssuedToken is an offline license token.
type IssuedToken struct {
	JWT       string
	ExpiresAt time.Time
	Plan      string
}

// errTokenKeyExpired refuses a token for a key past its expiry.
var errTokenKeyExpired = &Error{Code: CodeForbidden, Message: "License key has expired; renew it (set a later expiresAt) before issuing a token."}

// IssueToken signs an offline token for key id of the actor's organization,
// with alg AlgRS256 or AlgEdDSA ("" picks RS256 when an RSA key is
// configured, else EdDSA). The actor must own the organization, which must be
// active with an eligible plan; a revoked key gives ErrKeyRevoked, an
// unknown key ErrKeyNotFound. The token's expiry is never later than the
// key's ExpiresAt; a key past it gives an error of code CodeForbidden.
func (s *Service) IssueToken(ctx context.Context, a Actor, id, alg string) (IssuedToken, error) {
	signing := s.cfg.Signing
	switch alg {
	case "":
		alg = AlgEdDSA
		if signing.HasRSA() {
			alg = AlgRS256
		}
	case AlgEdDSA:
	case AlgRS256:
		if !signing.HasRSA() {
			return IssuedToken{}, &Error{Code: CodeInvalid, Message: "alg RS256 is not available: no RSA signing key is configured"}
		}
	default:
		return IssuedToken{}, &Error{Code: CodeInvalid, Message: "alg must be RS256 or EdDSA"}
	}
	org, err := s.owner(ctx, a, true)
	if err != nil {
		return IssuedToken{}, err
	}
	k, err := s.orgKey(ctx, org.ID, id)
	if err != nil {
		return IssuedToken{}, err
	}
	if !k.Active {
		return IssuedToken{}, ErrKeyRevoked
	}
	now := s.now().Truncate(time.Second)
	exp := now.Add(s.cfg.TokenLifetime)
	if !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(exp) {
		exp = k.ExpiresAt // never later than the key itself
		if !exp.After(now) {
			return IssuedToken{}, errTokenKeyExpired
		}
	}
	if s.cfg.CapTokensAtPeriodEnd && !org.CurrentPeriodEnd.IsZero() {
		if end := org.CurrentPeriodEnd.Add(s.cfg.TokenPeriodGrace); end.Before(exp) {
			exp = end.UTC().Truncate(time.Second)
		}
		if !exp.After(now) {
			return IssuedToken{}, &Error{Code: CodePlanNotEligible, Message: "The billing period has ended; please renew your plan."}
		}
	}
	features := org.Features
	if features == nil {
		features = map[string]any{}
	}
	jwt, err := signing.signJWT(alg, wire.TokenClaims{Issuer: s.policy.Load().Issuer, Subject: org.ID, Plan: org.Plan,
		Features: features, OrganizationName: org.Name, IssuedAt: now.Unix(), ExpiresAt: exp.Unix(), ID: k.ID})
	if err != nil {
		return IssuedToken{}, &Error{Code: CodeInternal, Message: "Could not sign the token.", Err: err}
	}
	s.emit(ctx, Event{Type: EventTokenIssued, Time: now, KeyID: k.ID, OrganizationID: org.ID,
		MaskedKey: k.MaskedKey, UserID: a.UserID})
	return IssuedToken{JWT: jwt, ExpiresAt: exp, Plan: org.Plan}, nil
}
