package licensing_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// badCase is one hostile request of the battery. Path, headers and body may
// hold the placeholders of batteryFixture.replacer ({A}, {KA}, ...).
type badCase struct {
	name   string
	method string
	path   string   // sent as is: no cleaning, no escaping
	hdr    []string // header lines "Name: value", sent as is (repeats allowed)
	body   string
	status int
	want   string // the exact body; for a 307, the Location
	allow  string // the Allow header of a 405
	signed bool   // the answer carries a Licensing-Signature
}

// batteryFixture is the state every case runs against: org-1 has an active
// key A (full key KA) and a revoked key R (full key KR); org-2 has an active
// key B (full key KB).
type batteryFixture struct {
	e        *env
	replacer *strings.Replacer
}

func newBatteryFixture(t *testing.T) *batteryFixture {
	t.Helper()
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	a, ka := e.create(t, "t-owner", "prod")
	r, kr := e.create(t, "t-owner", "old")
	if res := e.do(t, "DELETE", keysPath+"/"+r, "t-owner", ""); res.status != 200 {
		t.Fatalf("revoke: %d %s", res.status, res.raw)
	}
	e.orgs.update("org-2", func(o *licensing.Organization) { o.Features = map[string]any{"selfHostingLicense": true} })
	b, kb := e.create(t, "t-other", "theirs")
	e.orgs.update("org-2", func(o *licensing.Organization) { o.Features = map[string]any{"selfHostingLicense": false} })
	// A validation gives key A every field, so that a change to any of them shows.
	if res := e.do(t, "POST", validatePath, "", validateBody(ka,
		`"instanceName":"Prod","instanceUrl":"https://factura.example.ro","instanceId":"inst-1","metrics":{"companyCount":2}`)); res.status != 200 {
		t.Fatalf("validate: %d %s", res.status, res.raw)
	}
	if err := e.svc.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &batteryFixture{e: e, replacer: strings.NewReplacer(
		"{A}", a, "{R}", r, "{B}", b, "{KA}", ka, "{KR}", kr, "{KB}", kb,
		"{A_UPPER}", strings.ToUpper(a), "{R_UPPER}", strings.ToUpper(r), "{B_UPPER}", strings.ToUpper(b))}
}

// snapshot is every stored key of both organizations, all fields.
func (f *batteryFixture) snapshot(t *testing.T) map[string][]licensing.Key {
	t.Helper()
	if err := f.e.svc.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[string][]licensing.Key{}
	for _, org := range []string{"org-1", "org-2"} {
		keys, err := f.e.store.ListKeys(context.Background(), org, licensing.KeyCursor{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		out[org] = keys
	}
	return out
}

// rawResult is an answer read off the wire.
type rawResult struct {
	status int
	header http.Header
	body   string
}

// sendRaw writes one HTTP/1.1 request byte for byte to the test server and
// reads the answer, so that headers the Go client would refuse or merge,
// unclean paths and repeated headers reach the server as written. A body of
// chunked is sent with Transfer-Encoding: chunked.
func sendRaw(t *testing.T, srvURL, method, path string, hdr []string, body string, chunked bool) rawResult {
	t.Helper()
	u, err := url.Parse(srvURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, u.Host)
	for _, h := range hdr {
		b.WriteString(h + "\r\n")
	}
	switch {
	case chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for rest := body; rest != ""; {
			n := min(len(rest), 4096)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		b.WriteString("0\r\n\r\n")
	case body != "" || method == "POST" || method == "PUT" || method == "PATCH":
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	default:
		b.WriteString("\r\n")
	}
	// The server may answer (413) before it has read everything; a failed
	// write is then no failure of the test: the answer decides.
	go io.WriteString(conn, b.String())
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return rawResult{status: res.StatusCode, header: res.Header, body: string(raw)}
}

// Bodies of the answers, written from the messages in errors.go, input.go,
// httpjson.go and http.go. Handler answers end with a newline.
const (
	wantOrgNotFound    = `{"error":"Organization not found"}` + "\n"
	wantKeyNotFound    = `{"error":"License key not found"}` + "\n"
	wantNotFound       = `{"error":"Not found."}` + "\n"
	wantNotOwner       = `{"error":"Permission denied"}` + "\n"
	wantRevoked        = `{"error":"License key is revoked"}` + "\n"
	wantRevokedOK      = `{"status":"revoked"}` + "\n"
	wantMalformed      = `{"error":"Malformed JSON body."}` + "\n"
	wantTooLarge       = `{"error":"Request body too large; the limit is 65536 bytes."}` + "\n"
	wantInvalidLicense = `{"valid":false,"error":"Invalid or revoked license key"}` + "\n"
	wantKeyRequired    = `{"error":"licenseKey is required"}` + "\n"
	wantBadNonce       = `{"error":"nonce must be at most 128 printable ASCII characters"}` + "\n"
	wantBadName        = `{"error":"instanceName must be valid text of at most 255 characters without control or format characters"}` + "\n"
	wantBadURL         = `{"error":"instanceUrl must be an http or https URL, or a host name with an optional port and path, of at most 2048 characters"}` + "\n"
	wantBadInstanceID  = `{"error":"instanceId must be at most 128 printable ASCII characters without spaces, other than . and .."}` + "\n"
	wantBadMetricName  = `{"error":"metric names must be 1 to 64 characters without control or format characters"}` + "\n"
	wantBadMetricValue = `{"error":"metrics must be finite numbers, not negative"}` + "\n"
	wantMetricsNumbers = `{"error":"metrics values must be numbers"}` + "\n"
	wantBadLimit       = `{"error":"limit must be a whole number from 1 to 1000"}` + "\n"
	wantBadCursor      = `{"error":"cursor is not one this server made"}` + "\n"
	wantBadEventLimit  = `{"error":"limit must be a whole number from 1 to 500"}` + "\n"
	wantBadEventKeyID  = `{"error":"keyId must be a license key's id (a UUID)"}` + "\n"
	wantBadEventType   = `{"error":"type must be an event type, such as key.created or key.revoked"}` + "\n"
	wantBadAlg         = `{"error":"alg must be RS256 or EdDSA"}` + "\n"
	wantOrgRequired    = `{"error":"org is required"}` + "\n"
	wantBadOrg         = `{"error":"org must be at most 255 characters without control or format characters"}` + "\n"
	wantTwoOrgs        = `{"error":"X-Organization must be sent at most once"}` + "\n"
	wantBadExpiresAt   = `{"error":"expiresAt must be a time such as 2026-02-20T10:30:00+00:00 (RFC 3339), or null for never"}` + "\n"
	wantPastExpiresAt  = `{"error":"expiresAt must be in the future (or null for a key that never expires)"}` + "\n"
	wantFarExpiresAt   = `{"error":"expiresAt must be after 1970-01-01 and before 2262-04-11 (UTC)"}` + "\n"
	wantBadOverlap     = `{"error":"overlapHours must be a whole number from 0 to 2160 (90 days); the default is 168 (7 days)"}` + "\n"
	wantPatchEmpty     = `{"error":"Send at least one field to change: expiresAt, maxInstances."}` + "\n"
	wantMaxInstances   = `{"error":"maxInstances must be an integer from 1 to 1000 (or null for the plan's limit)"}` + "\n"
	wantNoInstance     = `{"error":"Instance not found"}` + "\n"
	wantNotEligible    = `{"error":"Your plan does not include self-hosted licenses; upgrade your plan in the billing settings to create license keys."}` + "\n"
	// net/http answers a request it cannot parse before any handler runs.
	wantGoBadHeader = "400 Bad Request"
)

// wantUnknownField is the refusal of a body field the route does not take;
// name is "" for a name that is not repeated.
func wantUnknownField(name, accepts string) string {
	what := "an unknown field"
	if name != "" {
		what = `unknown field \"` + name + `\"`
	}
	return `{"error":"The body has ` + what + `; this route accepts ` + accepts + `."}` + "\n"
}

func wantUTF8(field string) string { return `{"error":"` + field + ` must be valid UTF-8"}` + "\n" }
func wantMethod(allow string) string {
	return `{"error":"Method not allowed; use ` + allow + `."}` + "\n"
}

const (
	owner     = "Authorization: Bearer t-owner"
	other     = "Authorization: Bearer t-other"
	member    = "Authorization: Bearer t-member"
	jsonType  = "Content-Type: application/json"
	keyPathA  = keysPath + "/{A}"
	validate_ = validatePath
)

// nested returns n nested JSON arrays.
func nested(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// metricsOf returns a metrics object of n counters.
func metricsOf(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"m%d":1`, i)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// The 401 of an owner route: one text, and a hint at the shape of the
// Authorization header that never depends on whether a token exists.
const (
	wantUnauthorizedNoHeader     = `{"error":"Missing or invalid token.","hint":"The request has no Authorization header; send Authorization: Bearer, a space, then the token."}` + "\n"
	wantUnauthorizedTwoHeaders   = `{"error":"Missing or invalid token.","hint":"The request has more than one Authorization header; send exactly one."}` + "\n"
	wantUnauthorizedEmpty        = `{"error":"Missing or invalid token.","hint":"The Authorization header is empty; if it was built from a variable such as $TOKEN, that variable is empty."}` + "\n"
	wantUnauthorizedNoScheme     = `{"error":"Missing or invalid token.","hint":"The Authorization header has no scheme; write Bearer, a space, then the token."}` + "\n"
	wantUnauthorizedOtherScheme  = `{"error":"Missing or invalid token.","hint":"The Authorization header's scheme is not Bearer; send Authorization: Bearer, a space, then the token."}` + "\n"
	wantUnauthorizedNoToken      = `{"error":"Missing or invalid token.","hint":"The Authorization header says Bearer but holds no token; if it was built from a variable such as $TOKEN, that variable is empty."}` + "\n"
	wantUnauthorizedPrefix       = `{"error":"Missing or invalid token.","hint":"The token still has the \"owner token:\" prefix pasted in; send only the token that follows it."}` + "\n"
	wantUnauthorizedTwoSchemes   = `{"error":"Missing or invalid token.","hint":"The Authorization header says Bearer twice; send Bearer once, then the token."}` + "\n"
	wantUnauthorizedPlaceholder  = `{"error":"Missing or invalid token.","hint":"The token looks like a placeholder (a word in angle brackets, a $VARIABLE the shell did not expand, or an ellipsis); send the real token."}` + "\n"
	wantUnauthorizedQuoted       = `{"error":"Missing or invalid token.","hint":"The token is in quotes; send it without them."}` + "\n"
	wantUnauthorizedTooLong      = `{"error":"Missing or invalid token.","hint":"The token is longer than 4096 characters; copy only the token."}` + "\n"
	wantUnauthorizedNotPrintable = `{"error":"Missing or invalid token.","hint":"The token has spaces or characters other than printable ASCII; copy only the token, on one line."}` + "\n"
	wantUnauthorizedNotAccepted  = `{"error":"Missing or invalid token.","hint":"The Authorization header is well formed, but its token is not accepted; check that it is a current token."}` + "\n"
)

func vbody(extra string) string { return `{"licenseKey":"{KA}",` + extra + `}` }

func badCases() []badCase {
	long := strings.Repeat("t", 4097)
	nonce129 := strings.Repeat("n", 129)
	return []badCase{
		// --- authentication, on every owner route
		{name: "create/no auth", method: "POST", path: keysPath, body: `{}`, status: 401, want: wantUnauthorizedNoHeader},
		{name: "list/no auth", method: "GET", path: keysPath, status: 401, want: wantUnauthorizedNoHeader},
		{name: "revoke/no auth", method: "DELETE", path: keyPathA, status: 401, want: wantUnauthorizedNoHeader},
		{name: "token/no auth", method: "POST", path: keyPathA + "/jwt", status: 401, want: wantUnauthorizedNoHeader},
		{name: "list/basic scheme", method: "GET", path: keysPath, hdr: []string{"Authorization: Basic dC1vd25lcjp4"}, status: 401, want: wantUnauthorizedOtherScheme},
		{name: "list/token without scheme", method: "GET", path: keysPath, hdr: []string{"Authorization: t-owner"}, status: 401, want: wantUnauthorizedNoScheme},
		{name: "list/empty bearer", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer "}, status: 401, want: wantUnauthorizedNoToken},
		{name: "list/empty header", method: "GET", path: keysPath, hdr: []string{"Authorization:"}, status: 401, want: wantUnauthorizedEmpty},
		{name: "list/unknown token", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer t-nobody"}, status: 401, want: wantUnauthorizedNotAccepted},
		{name: "create/4097-byte token", method: "POST", path: keysPath, hdr: []string{"Authorization: Bearer " + long}, body: `{}`, status: 401, want: wantUnauthorizedTooLong},
		{name: "list/token with a tab", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer t-\towner"}, status: 401, want: wantUnauthorizedNotPrintable},
		{name: "list/token with a space", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer t- owner"}, status: 401, want: wantUnauthorizedNotPrintable},
		{name: "list/token with non-ASCII", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer t-owneré"}, status: 401, want: wantUnauthorizedNotPrintable},
		{name: "list/token with a NUL byte", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer t-\x00owner"}, status: 400, want: wantGoBadHeader},
		{name: "list/token with a control byte", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer t-owner\x01"}, status: 400, want: wantGoBadHeader},
		{name: "create/two Authorization headers", method: "POST", path: keysPath, hdr: []string{owner, other}, body: `{}`, status: 401, want: wantUnauthorizedTwoHeaders},
		{name: "revoke/two Authorization headers, first empty", method: "DELETE", path: keyPathA, hdr: []string{"Authorization:", owner}, status: 401, want: wantUnauthorizedTwoHeaders},
		{name: "list/two Authorization headers, same token", method: "GET", path: keysPath, hdr: []string{owner, owner}, status: 401, want: wantUnauthorizedTwoHeaders},
		{name: "list/owner token label pasted in", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer owner token: t-owner"}, status: 401, want: wantUnauthorizedPrefix},
		{name: "list/owner token label without scheme", method: "GET", path: keysPath, hdr: []string{"Authorization: owner token: t-owner"}, status: 401, want: wantUnauthorizedPrefix},
		{name: "list/placeholder in angle brackets", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer <token>"}, status: 401, want: wantUnauthorizedPlaceholder},
		{name: "list/unexpanded shell variable", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer $TOKEN"}, status: 401, want: wantUnauthorizedPlaceholder},
		{name: "list/unexpanded variable without scheme", method: "GET", path: keysPath, hdr: []string{"Authorization: ${TOKEN}"}, status: 401, want: wantUnauthorizedPlaceholder},
		{name: "list/ellipsis from the docs", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer lk_..."}, status: 401, want: wantUnauthorizedPlaceholder},
		{name: "list/quoted token", method: "GET", path: keysPath, hdr: []string{`Authorization: Bearer "t-owner"`}, status: 401, want: wantUnauthorizedQuoted},
		{name: "list/Bearer twice", method: "GET", path: keysPath, hdr: []string{"Authorization: Bearer Bearer t-owner"}, status: 401, want: wantUnauthorizedTwoSchemes},

		// --- X-Organization
		{name: "list/unknown organization", method: "GET", path: keysPath, hdr: []string{owner, "X-Organization: org-9"}, status: 404, want: wantOrgNotFound},
		{name: "create/organization of someone else", method: "POST", path: keysPath, hdr: []string{owner, "X-Organization: org-2"}, body: `{}`, status: 404, want: wantOrgNotFound},
		{name: "create/member organization, not owner", method: "POST", path: keysPath, hdr: []string{other, "X-Organization: org-1"}, body: `{}`, status: 403, want: wantNotOwner},
		{name: "revoke/member of the organization", method: "DELETE", path: keyPathA, hdr: []string{member}, status: 403, want: wantNotOwner},
		{name: "revoke/other organization's owner picks org-1", method: "DELETE", path: keyPathA, hdr: []string{other, "X-Organization: org-1"}, status: 403, want: wantNotOwner},
		{name: "token/huge organization", method: "POST", path: keyPathA + "/jwt", hdr: []string{owner, "X-Organization: " + strings.Repeat("o", 64<<10)}, status: 404, want: wantOrgNotFound},
		{name: "list/organization with a tab", method: "GET", path: keysPath, hdr: []string{owner, "X-Organization: org\t-1"}, status: 404, want: wantOrgNotFound},
		{name: "list/organization with a control byte", method: "GET", path: keysPath, hdr: []string{owner, "X-Organization: org-1\x7f"}, status: 400, want: wantGoBadHeader},
		{name: "revoke/empty organization is the default one", method: "DELETE", path: keysPath + "/{R}", hdr: []string{owner, "X-Organization:"}, status: 200, want: wantRevokedOK},
		{name: "list/organization case", method: "GET", path: keysPath, hdr: []string{owner, "X-Organization: ORG-1"}, status: 404, want: wantOrgNotFound},
		{name: "create/two organization headers", method: "POST", path: keysPath, hdr: []string{other, "X-Organization: org-2", "X-Organization: org-1"}, body: `{}`, status: 400, want: wantTwoOrgs},

		// --- the id in the path
		{name: "revoke/another organization's key", method: "DELETE", path: keysPath + "/{B}", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "token/another organization's key", method: "POST", path: keysPath + "/{B}/jwt", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/another organization's key upper-case", method: "DELETE", path: keysPath + "/{B_UPPER}", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/revoked key again", method: "DELETE", path: keysPath + "/{R}", hdr: []string{owner}, status: 200, want: wantRevokedOK},
		{name: "revoke/revoked key upper-case", method: "DELETE", path: keysPath + "/{R_UPPER}", hdr: []string{owner}, status: 200, want: wantRevokedOK},
		{name: "token/revoked key", method: "POST", path: keysPath + "/{R}/jwt", hdr: []string{owner}, status: 403, want: wantRevoked},
		{name: "token/revoked key upper-case", method: "POST", path: keysPath + "/{R_UPPER}/jwt", hdr: []string{owner}, status: 403, want: wantRevoked},
		{name: "revoke/unknown uuid", method: "DELETE", path: keysPath + "/019c8a12-4567-7abc-8ef0-123456789abc", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/not a uuid", method: "DELETE", path: keysPath + "/not-a-uuid", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/37-character id", method: "DELETE", path: keysPath + "/{A}0", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/35-character id", method: "DELETE", path: keysPath + "/019c8a12-4567-7abc-8ef0-123456789ab", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/urn form", method: "DELETE", path: keysPath + "/urn:uuid:{A}", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/braced form", method: "DELETE", path: keysPath + "/%7B{A}%7D", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/id with encoded slash", method: "DELETE", path: keysPath + "/{A}%2F", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/encoded slash inside", method: "DELETE", path: keysPath + "/..%2F{A}", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/encoded NUL", method: "DELETE", path: keysPath + "/%00", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/id and encoded NUL", method: "DELETE", path: keysPath + "/{A}%00", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "token/encoded dots", method: "POST", path: keysPath + "/%2E%2E/jwt", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "revoke/trailing slash", method: "DELETE", path: keyPathA + "/", hdr: []string{owner}, status: 404, want: wantNotFound},
		{name: "token/trailing slash", method: "POST", path: keyPathA + "/jwt/", hdr: []string{owner}, status: 404, want: wantNotFound},
		{name: "token/extra segment", method: "POST", path: keyPathA + "/jwt/x", hdr: []string{owner}, status: 404, want: wantNotFound},
		{name: "revoke/empty id", method: "DELETE", path: keysPath + "/", hdr: []string{owner}, status: 404, want: wantNotFound},

		// --- key lifetime: create's expiresAt, PATCH (expiry) and rotate
		{name: "create/expiresAt in the past", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"expiresAt":"2026-01-01T00:00:00+00:00"}`, status: 400, want: wantPastExpiresAt},
		{name: "create/expiresAt now", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"expiresAt":"2026-02-20T10:30:00Z"}`, status: 400, want: wantPastExpiresAt},
		{name: "create/expiresAt malformed", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"expiresAt":"2026-13-01"}`, status: 400, want: wantBadExpiresAt},
		{name: "create/expiresAt without offset", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"expiresAt":"2027-01-01T00:00:00"}`, status: 400, want: wantBadExpiresAt},
		{name: "create/expiresAt a number", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"expiresAt":1893456000}`, status: 400, want: wantBadExpiresAt},
		{name: "create/expiresAt past 2262", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"expiresAt":"2300-01-01T00:00:00+00:00"}`, status: 400, want: wantFarExpiresAt},
		{name: "create/expiresAt year 1", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"expiresAt":"0001-01-01T00:00:00+00:00"}`, status: 400, want: wantFarExpiresAt}, // Go's zero time, which means never
		{name: "patch/no auth", method: "PATCH", path: keyPathA, body: `{"expiresAt":null}`, status: 401, want: wantUnauthorizedNoHeader},
		{name: "patch/member", method: "PATCH", path: keyPathA, hdr: []string{member}, body: `{"expiresAt":null}`, status: 403, want: wantNotOwner},
		{name: "patch/another organization's key", method: "PATCH", path: keysPath + "/{B}", hdr: []string{owner}, body: `{"expiresAt":null}`, status: 404, want: wantKeyNotFound},
		{name: "patch/unknown uuid", method: "PATCH", path: keysPath + "/019c8a12-4567-7abc-8ef0-123456789abc", hdr: []string{owner}, body: `{"expiresAt":null}`, status: 404, want: wantKeyNotFound},
		{name: "patch/revoked key", method: "PATCH", path: keysPath + "/{R}", hdr: []string{owner}, body: `{"expiresAt":"2027-01-01T00:00:00+00:00"}`, status: 403, want: wantRevoked},
		{name: "patch/empty body", method: "PATCH", path: keyPathA, hdr: []string{owner}, status: 400, want: wantPatchEmpty},
		{name: "patch/empty object", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{}`, status: 400, want: wantPatchEmpty},
		{name: "patch/not an object", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `["expiresAt"]`, status: 400, want: wantMalformed},
		{name: "patch/unknown field", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"expiresAt":null,"active":true}`, status: 400, want: wantUnknownField("active", "expiresAt, maxInstances")},
		{name: "patch/misspelt field", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"expiresat":null}`, status: 400, want: wantUnknownField("expiresat", "expiresAt, maxInstances")},
		{name: "patch/a key as field name", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"{KA}":1}`, status: 400, want: wantUnknownField("", "expiresAt, maxInstances")},
		{name: "patch/maxInstances 0", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"maxInstances":0}`, status: 400, want: wantMaxInstances},
		{name: "patch/maxInstances 1001", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"maxInstances":1001}`, status: 400, want: wantMaxInstances},
		{name: "patch/maxInstances negative", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"maxInstances":-2}`, status: 400, want: wantMaxInstances},
		{name: "patch/maxInstances a string", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"maxInstances":"3"}`, status: 400, want: wantMaxInstances},
		{name: "patch/maxInstances a fraction", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"maxInstances":2.5}`, status: 400, want: wantMaxInstances},
		{name: "patch/maxInstances an exponent", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"maxInstances":1e2}`, status: 400, want: wantMaxInstances},
		{name: "patch/maxInstances huge", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"maxInstances":99999999999999999999999}`, status: 400, want: wantMaxInstances},
		{name: "patch/maxInstances good, expiresAt bad", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"maxInstances":3,"expiresAt":"tomorrow"}`, status: 400, want: wantBadExpiresAt},
		{name: "patch/maxInstances of a revoked key", method: "PATCH", path: keysPath + "/{R}", hdr: []string{owner}, body: `{"maxInstances":3}`, status: 403, want: wantRevoked},
		{name: "patch/maxInstances of another organization's key", method: "PATCH", path: keysPath + "/{B}", hdr: []string{owner}, body: `{"maxInstances":3}`, status: 404, want: wantKeyNotFound},
		{name: "create/maxInstances 0", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"maxInstances":0}`, status: 400, want: wantMaxInstances},
		{name: "create/maxInstances 1001", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"maxInstances":1001}`, status: 400, want: wantMaxInstances},
		{name: "create/maxInstances an object", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"maxInstances":{}}`, status: 400, want: wantMaxInstances},
		{name: "create/maxInstances a bool", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"maxInstances":true}`, status: 400, want: wantMaxInstances},

		// --- a key's instances
		{name: "instances/no auth", method: "GET", path: keyPathA + "/instances", status: 401, want: wantUnauthorizedNoHeader},
		{name: "instances/member", method: "GET", path: keyPathA + "/instances", hdr: []string{member}, status: 403, want: wantNotOwner},
		{name: "instances/another organization's key", method: "GET", path: keysPath + "/{B}/instances", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "instances/not a uuid", method: "GET", path: keysPath + "/not-a-uuid/instances", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "instances/POST", method: "POST", path: keyPathA + "/instances", hdr: []string{owner}, body: `{}`, status: 405, allow: "GET, HEAD", want: wantMethod("GET, HEAD")},
		{name: "release/no auth", method: "DELETE", path: keyPathA + "/instances/inst-a", status: 401, want: wantUnauthorizedNoHeader},
		{name: "release/member", method: "DELETE", path: keyPathA + "/instances/inst-a", hdr: []string{member}, status: 403, want: wantNotOwner},
		{name: "release/another organization's key", method: "DELETE", path: keysPath + "/{B}/instances/inst-a", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "release/unknown instance", method: "DELETE", path: keyPathA + "/instances/inst-zzz", hdr: []string{owner}, status: 404, want: wantNoInstance},
		{name: "release/escaped URL instance", method: "DELETE", path: keyPathA + "/instances/https:%2F%2Fnowhere.example", hdr: []string{owner}, status: 404, want: wantNoInstance},
		{name: "release/encoded NUL", method: "DELETE", path: keyPathA + "/instances/%00", hdr: []string{owner}, status: 404, want: wantNoInstance},
		{name: "release/instance id of 3000 bytes", method: "DELETE", path: keyPathA + "/instances/" + strings.Repeat("i", 3000), hdr: []string{owner}, status: 404, want: wantNoInstance},
		{name: "release/a key as instance id", method: "DELETE", path: keyPathA + "/instances/{KA}", hdr: []string{owner}, status: 404, want: wantNoInstance},
		{name: "release/no instance", method: "DELETE", path: keyPathA + "/instances/", hdr: []string{owner}, status: 404, want: wantNotFound},
		{name: "release/GET", method: "GET", path: keyPathA + "/instances/inst-a", hdr: []string{owner}, status: 405, allow: "DELETE", want: wantMethod("DELETE")},
		{name: "patch/expiresAt malformed", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"expiresAt":"tomorrow"}`, status: 400, want: wantBadExpiresAt},
		{name: "patch/expiresAt an object", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"expiresAt":{}}`, status: 400, want: wantBadExpiresAt},
		{name: "patch/expiresAt before 1970", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"expiresAt":"1969-12-31T00:00:00+00:00"}`, status: 400, want: wantFarExpiresAt},
		{name: "patch/expiresAt year 1", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"expiresAt":"0001-01-01T00:00:00Z"}`, status: 400, want: wantFarExpiresAt},
		{name: "patch/expiresAt year 1 with an offset", method: "PATCH", path: keyPathA, hdr: []string{owner}, body: `{"expiresAt":"0001-01-01T02:00:00+02:00"}`, status: 400, want: wantFarExpiresAt},
		{name: "rotate/no auth", method: "POST", path: keyPathA + "/rotate", status: 401, want: wantUnauthorizedNoHeader},
		{name: "rotate/member", method: "POST", path: keyPathA + "/rotate", hdr: []string{member}, status: 403, want: wantNotOwner},
		{name: "rotate/another organization's key", method: "POST", path: keysPath + "/{B}/rotate", hdr: []string{owner}, status: 404, want: wantKeyNotFound},
		{name: "rotate/plan not eligible", method: "POST", path: keysPath + "/{B}/rotate", hdr: []string{other}, status: 403, want: wantNotEligible},
		{name: "rotate/revoked key", method: "POST", path: keysPath + "/{R}/rotate", hdr: []string{owner}, status: 403, want: wantRevoked},
		{name: "rotate/overlap negative", method: "POST", path: keyPathA + "/rotate", hdr: []string{owner}, body: `{"overlapHours":-1}`, status: 400, want: wantBadOverlap},
		{name: "rotate/overlap over 90 days", method: "POST", path: keyPathA + "/rotate", hdr: []string{owner}, body: `{"overlapHours":2161}`, status: 400, want: wantBadOverlap},
		{name: "rotate/overlap a fraction", method: "POST", path: keyPathA + "/rotate", hdr: []string{owner}, body: `{"overlapHours":1.5}`, status: 400, want: wantBadOverlap},
		{name: "rotate/overlap an exponent", method: "POST", path: keyPathA + "/rotate", hdr: []string{owner}, body: `{"overlapHours":1e2}`, status: 400, want: wantBadOverlap},
		{name: "rotate/overlap a string", method: "POST", path: keyPathA + "/rotate", hdr: []string{owner}, body: `{"overlapHours":"24"}`, status: 400, want: wantBadOverlap},
		{name: "rotate/overlap huge", method: "POST", path: keyPathA + "/rotate", hdr: []string{owner}, body: `{"overlapHours":99999999999999999999999}`, status: 400, want: wantBadOverlap},
		{name: "rotate/unknown field", method: "POST", path: keyPathA + "/rotate", hdr: []string{owner}, body: `{"overlap":24}`, status: 400, want: wantUnknownField("overlap", "overlapHours")},
		{name: "rotate/malformed body", method: "POST", path: keyPathA + "/rotate", hdr: []string{owner}, body: `{"overlapHours":`, status: 400, want: wantMalformed},

		// --- unclean paths: the mux redirects to the clean path (307 keeps the
		// method), it never serves them
		{name: "revoke/dot-dot segment", method: "DELETE", path: keysPath + "/../keys/{A}", hdr: []string{owner}, status: 307, want: keyPathA},
		{name: "revoke/double slash", method: "DELETE", path: "/api/v1/licensing//keys/{A}", hdr: []string{owner}, status: 307, want: keyPathA},
		{name: "token/dot segment", method: "POST", path: keyPathA + "/./jwt", hdr: []string{owner}, status: 307, want: keyPathA + "/jwt"},

		// --- unknown paths and methods
		{name: "unknown/route", method: "GET", path: "/api/v1/licensing/nothing", status: 404, want: wantNotFound},
		{name: "unknown/prefix only", method: "GET", path: "/api/v1/licensing/", status: 404, want: wantNotFound},
		{name: "unknown/upper-case route", method: "GET", path: "/api/v1/licensing/KEYS", hdr: []string{owner}, status: 404, want: wantNotFound},
		{name: "unknown/other version", method: "GET", path: "/api/v2/licensing/keys", hdr: []string{owner}, status: 404, want: wantNotFound},
		{name: "unknown/validate trailing slash", method: "POST", path: validatePath + "/", body: vbody(`"x":1`), status: 404, want: wantNotFound},
		{name: "unknown/encoded NUL", method: "GET", path: "/api/v1/licensing/%00", status: 404, want: wantNotFound},
		{name: "method/PUT keys", method: "PUT", path: keysPath, hdr: []string{owner}, body: `{}`, status: 405, allow: "GET, HEAD, POST", want: wantMethod("GET, HEAD, POST")},
		{name: "method/PATCH keys", method: "PATCH", path: keysPath, hdr: []string{owner}, body: `{}`, status: 405, allow: "GET, HEAD, POST", want: wantMethod("GET, HEAD, POST")},
		{name: "method/DELETE keys", method: "DELETE", path: keysPath, hdr: []string{owner}, status: 405, allow: "GET, HEAD, POST", want: wantMethod("GET, HEAD, POST")},
		{name: "method/GET key", method: "GET", path: keyPathA, hdr: []string{owner}, status: 405, allow: "DELETE, PATCH", want: wantMethod("DELETE, PATCH")},
		{name: "method/PUT key", method: "PUT", path: keyPathA, hdr: []string{owner}, body: `{}`, status: 405, allow: "DELETE, PATCH", want: wantMethod("DELETE, PATCH")},
		{name: "method/GET rotate", method: "GET", path: keyPathA + "/rotate", hdr: []string{owner}, status: 405, allow: "POST", want: wantMethod("POST")},
		{name: "method/DELETE rotate", method: "DELETE", path: keyPathA + "/rotate", hdr: []string{owner}, status: 405, allow: "POST", want: wantMethod("POST")},
		{name: "method/GET token", method: "GET", path: keyPathA + "/jwt", hdr: []string{owner}, status: 405, allow: "POST", want: wantMethod("POST")},
		{name: "method/DELETE token", method: "DELETE", path: keyPathA + "/jwt", hdr: []string{owner}, status: 405, allow: "POST", want: wantMethod("POST")},
		{name: "method/GET validate", method: "GET", path: validatePath, status: 405, allow: "POST", want: wantMethod("POST")},
		{name: "method/PUT validate", method: "PUT", path: validatePath, body: vbody(`"x":1`), status: 405, allow: "POST", want: wantMethod("POST")},
		{name: "method/DELETE validate", method: "DELETE", path: validatePath, status: 405, allow: "POST", want: wantMethod("POST")},
		{name: "method/POST revocations", method: "POST", path: "/api/v1/licensing/revocations?org=org-1", body: `{}`, status: 405, allow: "GET, HEAD", want: wantMethod("GET, HEAD")},
		{name: "method/DELETE public-keys", method: "DELETE", path: "/api/v1/licensing/public-keys", status: 405, allow: "GET, HEAD", want: wantMethod("GET, HEAD")},
		{name: "method/PUT public-keys", method: "PUT", path: "/api/v1/licensing/public-keys", body: `{}`, status: 405, allow: "GET, HEAD", want: wantMethod("GET, HEAD")},

		// --- list parameters
		{name: "list/limit 0", method: "GET", path: keysPath + "?limit=0", hdr: []string{owner}, status: 400, want: wantBadLimit},
		{name: "list/limit negative", method: "GET", path: keysPath + "?limit=-1", hdr: []string{owner}, status: 400, want: wantBadLimit},
		{name: "list/limit 1001", method: "GET", path: keysPath + "?limit=1001", hdr: []string{owner}, status: 400, want: wantBadLimit},
		{name: "list/limit huge", method: "GET", path: keysPath + "?limit=99999999999999999999999", hdr: []string{owner}, status: 400, want: wantBadLimit},
		{name: "list/limit not a number", method: "GET", path: keysPath + "?limit=ten", hdr: []string{owner}, status: 400, want: wantBadLimit},
		{name: "list/limit exponent", method: "GET", path: keysPath + "?limit=1e2", hdr: []string{owner}, status: 400, want: wantBadLimit},
		{name: "list/limit empty", method: "GET", path: keysPath + "?limit=", hdr: []string{owner}, status: 400, want: wantBadLimit},
		{name: "list/limit fraction", method: "GET", path: keysPath + "?limit=5.0", hdr: []string{owner}, status: 400, want: wantBadLimit},
		{name: "list/cursor garbage", method: "GET", path: keysPath + "?limit=5&cursor=not-a-cursor!", hdr: []string{owner}, status: 400, want: wantBadCursor},
		{name: "list/cursor short", method: "GET", path: keysPath + "?cursor=AAAA", hdr: []string{owner}, status: 400, want: wantBadCursor},
		{name: "list/cursor padded base64", method: "GET", path: keysPath + "?cursor=" + strings.Repeat("A", 32) + "%3D%3D", hdr: []string{owner}, status: 400, want: wantBadCursor},
		{name: "list/cursor huge", method: "GET", path: keysPath + "?cursor=" + strings.Repeat("A", 8000), hdr: []string{owner}, status: 400, want: wantBadCursor},
		{name: "list/bad cursor before auth is still 401", method: "GET", path: keysPath + "?cursor=x", status: 401, want: wantUnauthorizedNoHeader},

		// --- event log parameters
		{name: "events/limit 0", method: "GET", path: eventsPath + "?limit=0", hdr: []string{owner}, status: 400, want: wantBadEventLimit},
		{name: "events/limit 501", method: "GET", path: eventsPath + "?limit=501", hdr: []string{owner}, status: 400, want: wantBadEventLimit},
		{name: "events/limit huge", method: "GET", path: eventsPath + "?limit=99999999999999999999999", hdr: []string{owner}, status: 400, want: wantBadEventLimit},
		{name: "events/limit empty", method: "GET", path: eventsPath + "?limit=", hdr: []string{owner}, status: 400, want: wantBadEventLimit},
		{name: "events/limit twice", method: "GET", path: eventsPath + "?limit=1&limit=2", hdr: []string{owner}, status: 400, want: `{"error":"limit must be given at most once"}` + "\n"},
		{name: "events/cursor garbage", method: "GET", path: eventsPath + "?cursor=not-a-cursor!", hdr: []string{owner}, status: 400, want: wantBadCursor},
		{name: "events/cursor of the key list", method: "GET", path: eventsPath + "?cursor=" + strings.Repeat("A", 54), hdr: []string{owner}, status: 400, want: wantBadCursor},
		{name: "events/cursor forged", method: "GET", path: eventsPath + "?cursor=" + strings.Repeat("A", 32), hdr: []string{owner}, status: 400, want: wantBadCursor},
		{name: "events/cursor huge", method: "GET", path: eventsPath + "?cursor=" + strings.Repeat("A", 8000), hdr: []string{owner}, status: 400, want: wantBadCursor},
		{name: "events/keyId not an id", method: "GET", path: eventsPath + "?keyId=../keys", hdr: []string{owner}, status: 400, want: wantBadEventKeyID},
		{name: "events/keyId with NUL", method: "GET", path: eventsPath + "?keyId={A}%00", hdr: []string{owner}, status: 400, want: wantBadEventKeyID},
		{name: "events/type unknown", method: "GET", path: eventsPath + "?type=key.deleted", hdr: []string{owner}, status: 400, want: wantBadEventType},
		{name: "events/type upper case", method: "GET", path: eventsPath + "?type=KEY.CREATED", hdr: []string{owner}, status: 400, want: wantBadEventType},
		{name: "events/member", method: "GET", path: eventsPath, hdr: []string{member}, status: 403, want: wantNotOwner},
		{name: "events/bad limit before auth is still 401", method: "GET", path: eventsPath + "?limit=0", status: 401, want: wantUnauthorizedNoHeader},
		{name: "method/POST events", method: "POST", path: eventsPath, hdr: []string{owner}, body: `{}`, status: 405, allow: "GET, HEAD", want: wantMethod("GET, HEAD")},

		// --- token parameters
		{name: "token/alg none", method: "POST", path: keyPathA + "/jwt?alg=none", hdr: []string{owner}, status: 400, want: wantBadAlg},
		{name: "token/alg HS256", method: "POST", path: keyPathA + "/jwt?alg=HS256", hdr: []string{owner}, status: 400, want: wantBadAlg},
		{name: "token/alg lower-case", method: "POST", path: keyPathA + "/jwt?alg=eddsa", hdr: []string{owner}, status: 400, want: wantBadAlg},
		{name: "token/alg RS256 without an RSA key", method: "POST", path: keyPathA + "/jwt?alg=RS256", hdr: []string{owner}, status: 400,
			want: `{"error":"alg RS256 is not available: no RSA signing key is configured"}` + "\n"},
		{name: "token/alg with NUL", method: "POST", path: keyPathA + "/jwt?alg=EdDSA%00", hdr: []string{owner}, status: 400, want: wantBadAlg},

		// --- create bodies
		{name: "create/malformed JSON", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":`, status: 400, want: wantMalformed},
		{name: "create/trailing garbage", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":"a"} x`, status: 400, want: wantMalformed},
		{name: "create/two objects", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{}{}`, status: 400, want: wantMalformed},
		{name: "create/JSON string", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `"x"`, status: 400, want: wantMalformed},
		{name: "create/JSON array", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `[]`, status: 400, want: wantMalformed},
		{name: "create/10,000 nested arrays", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: nested(10000), status: 400, want: wantMalformed},
		{name: "create/10,001 nested arrays", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: nested(10001), status: 400, want: wantMalformed},
		{name: "create/name of 10,000 nested arrays", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":` + nested(9999) + `}`, status: 400,
			want: `{"error":"instanceName must be a string"}` + "\n"},
		{name: "create/body over 64 KiB", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":"` + strings.Repeat("a", 64<<10) + `"}`, status: 413, want: wantTooLarge},
		{name: "create/chunked body over 64 KiB", method: "POST", path: keysPath + "#chunked", hdr: []string{owner, jsonType}, body: strings.Repeat(" ", 70<<10) + `{}`, status: 413, want: wantTooLarge},
		{name: "create/name a number", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":5}`, status: 400, want: `{"error":"instanceName must be a string"}` + "\n"},
		{name: "create/name an object", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":{"a":1}}`, status: 400, want: `{"error":"instanceName must be a string"}` + "\n"},
		{name: "create/name invalid UTF-8", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "{\"instanceName\":\"a\xffb\"}", status: 400, want: wantUTF8("instanceName")},
		{name: "create/name a surrogate half", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "{\"instanceName\":\"a\xed\xa0\x80\"}", status: 400, want: wantUTF8("instanceName")},
		{name: "create/name overlong encoding", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "{\"instanceName\":\"\xc0\xaf\"}", status: 400, want: wantUTF8("instanceName")},
		{name: "create/invalid UTF-8 in a field name", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "{\"instance\xffName\":\"a\"}", status: 400, want: wantUTF8("the request body")},
		{name: "create/invalid UTF-8 under a key-like field name", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "{\"{KB}\":\"\xff\"}", status: 400, want: wantUTF8("the request body")},
		{name: "create/invalid UTF-8 under a long field name", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "{\"" + strings.Repeat("f", 33) + "\":\"\xff\"}", status: 400, want: wantUTF8("the request body")},
		{name: "create/invalid UTF-8 in an unknown field", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "{\"color\":\"\xff\"}", status: 400, want: wantUTF8("color")},
		{name: "create/invalid UTF-8 in broken JSON", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "{\"instanceName\":\"\xff", status: 400, want: wantUTF8("the request body")},
		{name: "create/name with bidi override", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":"prod\u202egnp.exe"}`, status: 400, want: wantBadName},
		{name: "create/name with raw bidi override", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "{\"instanceName\":\"prod\u202egnp\"}", status: 400, want: wantBadName},
		{name: "create/name with zero-width space", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":"pr\u200bod"}`, status: 400, want: wantBadName},
		{name: "create/name with escaped NUL", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":"prod\u0000"}`, status: 400, want: wantBadName},
		{name: "create/name with newline", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":"prod\nINFO forged"}`, status: 400, want: wantBadName},
		{name: "create/name with DEL", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":"prod\u007f"}`, status: 400, want: wantBadName},
		{name: "create/name with BOM", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":"\ufeffprod"}`, status: 400, want: wantBadName},
		{name: "create/name of 256 characters", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: `{"instanceName":"` + strings.Repeat("é", 256) + `"}`, status: 400, want: wantBadName},
		{name: "create/form type, bad name still decoded", method: "POST", path: keysPath, hdr: []string{owner, "Content-Type: application/x-www-form-urlencoded"}, body: `{"instanceName":"a\u202e"}`, status: 400, want: wantBadName},
		{name: "create/text type, bad name still decoded", method: "POST", path: keysPath, hdr: []string{owner, "Content-Type: text/plain"}, body: `{"instanceName":5}`, status: 400, want: `{"error":"instanceName must be a string"}` + "\n"},
		{name: "create/no type, bad name still decoded", method: "POST", path: keysPath, hdr: []string{owner}, body: `{"instanceName":"\u200b"}`, status: 400, want: wantBadName},
		{name: "create/form body", method: "POST", path: keysPath, hdr: []string{owner, "Content-Type: application/x-www-form-urlencoded"}, body: `instanceName=prod`, status: 400, want: wantMalformed},
		{name: "create/multipart body", method: "POST", path: keysPath, hdr: []string{owner, "Content-Type: multipart/form-data; boundary=x"}, body: "--x\r\nContent-Disposition: form-data; name=\"instanceName\"\r\n\r\nprod\r\n--x--\r\n", status: 400, want: wantMalformed},
		{name: "create/XML body", method: "POST", path: keysPath, hdr: []string{owner, "Content-Type: application/xml"}, body: `<key><instanceName>p</instanceName></key>`, status: 400, want: wantMalformed},
		{name: "create/UTF-16 body", method: "POST", path: keysPath, hdr: []string{owner, jsonType}, body: "\xff\xfe{\x00}\x00", status: 400, want: wantUTF8("the request body")},

		// --- validate bodies
		{name: "validate/malformed JSON", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":`, status: 400, want: wantMalformed},
		{name: "validate/empty body", method: "POST", path: validate_, hdr: []string{jsonType}, status: 400, want: wantKeyRequired},
		{name: "validate/10,000 nested arrays", method: "POST", path: validate_, hdr: []string{jsonType}, body: nested(10000), status: 400, want: wantMalformed},
		{name: "validate/metrics of 10,000 nested arrays", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":` + nested(9999)), status: 400, want: `{"error":"metrics must be an object"}` + "\n"},
		{name: "validate/body over 64 KiB", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceName":"` + strings.Repeat("a", 64<<10) + `"`), status: 413, want: wantTooLarge},
		{name: "validate/licenseKey a number", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":12345}`, status: 400, want: `{"error":"licenseKey must be a string"}` + "\n"},
		{name: "validate/licenseKey an array", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":["{KA}"]}`, status: 400, want: `{"error":"licenseKey must be a string"}` + "\n"},
		{name: "validate/licenseKey an object", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":{"key":"{KA}"}}`, status: 400, want: `{"error":"licenseKey must be a string"}` + "\n"},
		{name: "validate/licenseKey a boolean", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":true}`, status: 400, want: `{"error":"licenseKey must be a string"}` + "\n"},
		{name: "validate/licenseKey null", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":null}`, status: 400, want: wantKeyRequired},
		{name: "validate/licenseKey blank", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":"   "}`, status: 400, want: wantKeyRequired},
		{name: "validate/licenseKey invalid UTF-8", method: "POST", path: validate_, hdr: []string{jsonType}, body: "{\"licenseKey\":\"\xff{KA}\"}", status: 400, want: wantUTF8("licenseKey")},
		{name: "validate/instanceName a number", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceName":1`), status: 400, want: `{"error":"instanceName must be a string"}` + "\n"},
		{name: "validate/instanceName invalid UTF-8", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody("\"instanceName\":\"a\xffb\""), status: 400, want: wantUTF8("instanceName")},
		{name: "validate/instanceUrl invalid UTF-8", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody("\"instanceUrl\":\"https://a\xc3.example\""), status: 400, want: wantUTF8("instanceUrl")},
		{name: "validate/instanceId invalid UTF-8", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody("\"instanceId\":\"i\xfe\""), status: 400, want: wantUTF8("instanceId")},
		{name: "validate/nonce invalid UTF-8", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody("\"nonce\":\"n\x80\""), status: 400, want: wantUTF8("nonce")},
		{name: "validate/metric name invalid UTF-8", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody("\"metrics\":{\"users\xed\xa0\x80\":1}"), status: 400, want: wantUTF8("metrics")},
		{name: "validate/instanceName with bidi override", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceName":"a\u202eb"`), status: 400, want: wantBadName},
		{name: "validate/instanceName with zero-width space", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceName":"a\u200bb"`), status: 400, want: wantBadName},
		{name: "validate/instanceName with escaped NUL", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceName":"\u0000"`), status: 400, want: wantBadName},
		{name: "validate/instanceName of 256 characters", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceName":"` + strings.Repeat("n", 256) + `"`), status: 400, want: wantBadName},
		{name: "validate/instanceUrl of 2049 characters", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceUrl":"https://x.example/` + strings.Repeat("a", 2049-len("https://x.example/")) + `"`), status: 400, want: wantBadURL},
		{name: "validate/instanceUrl javascript", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceUrl":"javascript:alert(1)"`), status: 400, want: wantBadURL},
		{name: "validate/instanceUrl with bidi override", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceUrl":"https://a.example/\u202e"`), status: 400, want: wantBadURL},
		{name: "validate/instanceUrl a number", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceUrl":1`), status: 400, want: `{"error":"instanceUrl must be a string"}` + "\n"},
		{name: "validate/instanceId of 129 characters", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceId":"` + strings.Repeat("i", 129) + `"`), status: 400, want: wantBadInstanceID},
		{name: "validate/instanceId with a space", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceId":"a b"`), status: 400, want: wantBadInstanceID},
		{name: "validate/instanceId non-ASCII", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"instanceId":"é"`), status: 400, want: wantBadInstanceID},
		{name: "validate/33 metrics", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":` + metricsOf(33)), status: 400, want: `{"error":"metrics must have at most 32 entries"}` + "\n"},
		{name: "validate/metric name of 65 characters", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"` + strings.Repeat("m", 65) + `":1}`), status: 400, want: wantBadMetricName},
		{name: "validate/empty metric name", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"":1}`), status: 400, want: wantBadMetricName},
		{name: "validate/metric name with bidi override", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"users\u202e":1}`), status: 400, want: wantBadMetricName},
		{name: "validate/metric name with NUL", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"\u0000":1}`), status: 400, want: wantBadMetricName},
		{name: "validate/negative metric", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":-1}`), status: 400, want: wantBadMetricValue},
		{name: "validate/negative tiny metric", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":-1e-300}`), status: 400, want: wantBadMetricValue},
		{name: "validate/metric 1e400", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":1e400}`), status: 400, want: wantBadMetricValue},
		{name: "validate/metric -1e400", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":-1e400}`), status: 400, want: wantBadMetricValue},
		{name: "validate/metric NaN string", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":"NaN"}`), status: 400, want: wantMetricsNumbers},
		{name: "validate/metric bare NaN", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":NaN}`), status: 400, want: wantMalformed},
		{name: "validate/metric Infinity", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":Infinity}`), status: 400, want: wantMalformed},
		{name: "validate/metric a string", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":"5"}`), status: 400, want: wantMetricsNumbers},
		{name: "validate/metric null", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":null}`), status: 400, want: wantMetricsNumbers},
		{name: "validate/metric nested", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":{"userCount":{"n":1}}`), status: 400, want: wantMetricsNumbers},
		{name: "validate/metrics an array", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"metrics":[1,2]`), status: 400, want: `{"error":"metrics must be an object"}` + "\n"},
		{name: "validate/form type, bad field still decoded", method: "POST", path: validate_, hdr: []string{"Content-Type: application/x-www-form-urlencoded"}, body: vbody(`"metrics":{"userCount":-1}`), status: 400, want: wantBadMetricValue},
		{name: "validate/text type, unknown key decoded", method: "POST", path: validate_, hdr: []string{"Content-Type: text/plain"}, body: `{"licenseKey":"{KB}0"}`, status: 401, want: wantInvalidLicense},
		{name: "validate/no type, empty key decoded", method: "POST", path: validate_, body: `{"licenseKey":""}`, status: 400, want: wantKeyRequired},
		{name: "validate/form body", method: "POST", path: validate_, hdr: []string{"Content-Type: application/x-www-form-urlencoded"}, body: `licenseKey={KA}`, status: 400, want: wantMalformed},
		{name: "validate/revoked key", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":"{KR}"}`, status: 401, want: wantInvalidLicense},
		{name: "validate/mistyped key", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":"0{KA}"}`, status: 401, want: wantInvalidLicense},
		{name: "validate/key of 60 KiB", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":"` + strings.Repeat("a", 60<<10) + `"}`, status: 401, want: wantInvalidLicense},
		{name: "validate/key with NUL", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":"{KA}\u0000"}`, status: 401, want: wantInvalidLicense},
		{name: "validate/key with bidi override", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":"\u202e{KA}"}`, status: 401, want: wantInvalidLicense},

		// --- nonces: refused before anything is signed, never echoed
		{name: "validate/nonce of 129 characters", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"nonce":"` + nonce129 + `"`), status: 400, want: wantBadNonce},
		{name: "validate/nonce with control byte", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"nonce":"n\u0001"`), status: 400, want: wantBadNonce},
		{name: "validate/nonce with newline", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"nonce":"n\nDate: x"`), status: 400, want: wantBadNonce},
		{name: "validate/nonce non-ASCII", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"nonce":"nonceé"`), status: 400, want: wantBadNonce},
		{name: "validate/nonce a number", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"nonce":12`), status: 400, want: `{"error":"nonce must be a string"}` + "\n"},
		{name: "validate/bad nonce with an unknown key", method: "POST", path: validate_, hdr: []string{jsonType}, body: `{"licenseKey":"x","nonce":"` + nonce129 + `"}`, status: 400, want: wantBadNonce},
		{name: "validate/bad nonce with a bad field", method: "POST", path: validate_, hdr: []string{jsonType}, body: vbody(`"nonce":"` + nonce129 + `","instanceName":"\u202e"`), status: 400, want: wantBadNonce},
		{name: "revocations/nonce of 129 characters", method: "GET", path: "/api/v1/licensing/revocations?org=org-1&nonce=" + nonce129, status: 400, want: wantBadNonce},
		{name: "revocations/nonce with control bytes", method: "GET", path: "/api/v1/licensing/revocations?org=org-1&nonce=a%01%1b%00", status: 400, want: wantBadNonce},
		{name: "revocations/nonce non-ASCII", method: "GET", path: "/api/v1/licensing/revocations?org=org-1&nonce=%C3%A9", status: 400, want: wantBadNonce},
		{name: "revocations/nonce invalid UTF-8", method: "GET", path: "/api/v1/licensing/revocations?org=org-1&nonce=%FF", status: 400, want: wantBadNonce},
		{name: "revocations/5000-character nonce without org", method: "GET", path: "/api/v1/licensing/revocations?nonce=" + strings.Repeat("%01n", 2500), status: 400, want: wantBadNonce},
		{name: "revocations/no org, good nonce", method: "GET", path: "/api/v1/licensing/revocations?nonce=abc", status: 400, want: `{"error":"org is required","nonce":"abc"}` + "\n", signed: true},
		{name: "revocations/no org", method: "GET", path: "/api/v1/licensing/revocations", status: 400, want: wantOrgRequired, signed: true},                                           // revocation answers are always signed
		{name: "revocations/org of 256 characters", method: "GET", path: "/api/v1/licensing/revocations?org=" + strings.Repeat("o", 256), status: 400, want: wantBadOrg, signed: true}, // revocation answers are always signed
		{name: "revocations/org with control bytes", method: "GET", path: "/api/v1/licensing/revocations?org=org-1%00%0a&nonce=abc", status: 400, want: `{"error":"org must be at most 255 characters without control or format characters","nonce":"abc"}` + "\n", signed: true},
		{name: "revocations/org with bidi override", method: "GET", path: "/api/v1/licensing/revocations?org=org-1%E2%80%AE", status: 400, want: wantBadOrg, signed: true}, // revocation answers are always signed
		{name: "revocations/org invalid UTF-8", method: "GET", path: "/api/v1/licensing/revocations?org=%FF", status: 400, want: wantBadOrg, signed: true},                 // revocation answers are always signed
	}
}

// TestBadInputBattery sends every hostile request of badCases through a real
// HTTP connection and checks the exact status and body, and that the store
// holds exactly what it held before, field for field.
func TestBadInputBattery(t *testing.T) {
	f := newBatteryFixture(t)
	before := f.snapshot(t)
	cases := badCases()
	if len(cases) < 80 {
		t.Fatalf("the battery has %d cases, want at least 80", len(cases))
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			path, chunked := strings.CutSuffix(f.replacer.Replace(tc.path), "#chunked")
			hdr := make([]string, len(tc.hdr))
			for i, h := range tc.hdr {
				hdr[i] = f.replacer.Replace(h)
			}
			res := sendRaw(t, f.e.srv.URL, tc.method, path, hdr, f.replacer.Replace(tc.body), chunked)
			is.Equal(res.status, tc.status) // status
			if tc.status == http.StatusTemporaryRedirect {
				is.Equal(res.header.Get("Location"), f.replacer.Replace(tc.want)) // to the clean path; nothing served
				is.Equal(res.body, "")
			} else {
				is.Equal(res.body, f.replacer.Replace(tc.want)) // exact body
			}
			is.Equal(res.header.Get("Allow"), tc.allow)                          // Allow only on a 405
			is.Equal(res.header.Get(licensing.SignatureHeader) != "", tc.signed) // signed only when a good nonce came
			if tc.status == 401 && strings.HasPrefix(tc.want, `{"error":"Missing`) {
				is.True(strings.Contains(res.body, `"hint":"`)) // every owner 401 hints at the header's shape
				is.Equal(res.header.Get("WWW-Authenticate"), `Bearer realm="licensing"`)
			}
			for _, k := range []string{"{KA}", "{KR}", "{KB}"} {
				is.True(!strings.Contains(res.body, f.replacer.Replace(k))) // no full key in any answer
			}
		})
	}
	after := f.snapshot(t)
	is := is.New(t)
	is.Equal(len(after["org-1"]), 2)
	is.Equal(len(after["org-2"]), 1)
	is.Equal(f.e.count(t), 3)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("the store changed:\nbefore %+v\nafter  %+v", before, after)
	}
}
