package licensing

import (
	"net/http"
	"strings"

	"github.com/licensekit/licensing/internal/wire"
)

// Authenticator maps an owner request to its Actor. The request's context is
// the call's context.
//
// It must honour the X-Organization header (organizationHeader): when present,
// the Actor's OrganizationID is that organization if the user belongs to it;
// when absent, the user's default organization. It returns an error whose
// code is CodeUnauthorized (for example ErrUnauthorized) for a missing,
// malformed or unknown credential, and ErrOrgNotFound when the chosen
// organization does not exist or the user does not belong to it.
// BearerToken and ResolveActor do the HTTP parts of that.
type Authenticator interface {
	Authenticate(r *http.Request) (Actor, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (Actor, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (Actor, error) { return f(r) }

// organizationHeader picks the organization of a user who belongs to several.
const organizationHeader = wire.OrganizationHeader

// ResolveActor is the X-Organization rule for Authenticator implementations:
// given the authenticated user and the organizations they own or belong to
// (the first is their default), it returns the organization the header
// names if it is one of them, else the default; ErrOrgNotFound when the
// header names another organization or the user has none.
func ResolveActor(r *http.Request, userID string, orgIDs []string) (Actor, error) {
	want := r.Header.Get(organizationHeader)
	for _, o := range orgIDs {
		if want == "" || o == want {
			return Actor{UserID: userID, OrganizationID: o}, nil
		}
	}
	return Actor{}, ErrOrgNotFound
}

// maxTokenLength bounds the bearer token BearerToken accepts.
const maxTokenLength = 4096

// BearerToken returns the token of an "Authorization: Bearer <token>" header.
// A missing header, another scheme, an empty or over-long token, or a token
// with spaces or control characters gives ErrUnauthorized.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrUnauthorized
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || len(token) > maxTokenLength || strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return "", ErrUnauthorized
	}
	return token, nil
}
