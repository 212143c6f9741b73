package licensing_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestUnauthorizedHintTellsNoTokenApart: the 401's hint comes from the
// header's shape alone, so a token the authenticator knows but refuses (an
// expired session, say) and one it never saw get the same body, and the
// validate route's 401 has no hint.
func TestUnauthorizedHintTellsNoTokenApart(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	expired := errors.New("session expired")
	srv := httptest.NewServer(licensing.NewHandler(e.svc, licensing.AuthenticatorFunc(func(r *http.Request) (licensing.Actor, error) {
		if tok, _ := licensing.BearerToken(r); tok == "t-owner" {
			return licensing.Actor{}, &licensing.Error{Code: licensing.CodeUnauthorized, Message: "Missing or invalid token.", Err: expired}
		}
		return licensing.Actor{}, licensing.ErrUnauthorized
	}), licensing.HandlerConfig{}))
	defer srv.Close()
	body := func(token string) string {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/licensing/keys", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		is.NoErr(err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		is.Equal(res.StatusCode, 401)
		return string(b)
	}
	known := body("t-owner")
	is.Equal(known, body("t-nobody"))                                                   // known or not, one answer
	is.Equal(known, body(strings.Repeat("f", 64)))                                      // whatever its length
	is.True(strings.Contains(known, `"hint":"The Authorization header is well formed`)) // and it still says the header is right

	r := e.do(t, "POST", "/api/v1/licensing/validate", "", `{"licenseKey":"x"}`)
	is.Equal(r.status, 401)
	_, hinted := r.body["hint"]
	is.True(!hinted) // a license key is no owner credential
}
