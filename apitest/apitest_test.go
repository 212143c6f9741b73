// Package apitest holds docs/openapi.yaml against the real licensing-server
// binary: every example in the document is sent and answered as documented,
// and a crawl of every documented operation with bad input finds only
// documented statuses whose bodies match their schemas.
//
// It is a module of its own so that the OpenAPI library it uses does not
// become a dependency of the licensing module. Run it from the repository
// root with `go test ./apitest/...` (go.work) or here with `go test ./...`.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/licensekit/licensing/internal/harness"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// Values of the document's examples that stand for real keys (see the
// document's description).
const (
	exActiveID      = "019c8a12-4567-7abc-8ef0-123456789abc"
	exRevokedID     = "019c8a12-89ab-7cde-8f01-23456789abcd"
	exActiveKey     = "96879611650f80a81392a52e0db9b0237669087c4518e1c130e541a5b11ca0de"
	exRevokedKey    = "4bb47f186df233e48b09d241ee4defb821add0c35ac8311469fe152259ef9388"
	exInactiveKey   = "d1022618b99a974b56caeae99b4f9e2eac444335123e3ab94bbbc817143cf7df"
	exDowngradedKey = "36497cd22b69edbf03d8d7b71d549738b6bfd74cc051efb2b32ac5dabe76eb36"
	exExpiredKey    = "5e1f0e7c5e1f0e7c5e1f0e7c5e1f0e7c5e1f0e7c5e1f0e7c5e1f0e7c5e1f0e7c"
	exRotatedID     = "019c8a12-cdef-7abc-8f01-23456789abcd"
	exSeatedID      = "019c8a12-5eed-7abc-8f01-23456789abcd"
	exSeatedKey     = "5eed0000c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee005eed0000"
	exReleaseID     = "019c8a12-f4ee-7abc-8f01-23456789abcd"
)

var (
	doc         *contract
	primary     *server // the server every example and probe goes to
	limited     *server // started with -rate-limit 1 -rate-burst 1
	revoked     createdKey
	inactiveKey createdKey // of org-closed, deactivated after it was made
	downKey     createdKey // of org-down, downgraded after it was made
	expiredKey  createdKey // given a past expiry after it was made
	rotatedKey  createdKey // rotated after it was made
	seatedKey   createdKey // maxInstances 1, its seat held by instance "apitest-instance"
	releaseKey  createdKey // no limit, instance "https://apitest.example" holds a seat

	reachedMu sync.Mutex
	reached   = map[string]bool{}     // "METHOD path status" answered by the server
	causes    = map[string][]string{} // problem (paths removed) -> the cases that hit it
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apitest:", err)
		if primary != nil {
			fmt.Fprintln(os.Stderr, "server log:\n"+primary.logs.String())
		}
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if doc, err = loadContract(); err != nil {
		return 1, err
	}
	dir, err := os.MkdirTemp("", "apitest")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	bin, err := harness.Build(harness.ServerCmd)
	if err != nil {
		return 1, err
	}
	defer harness.RemoveBuilds()
	if primary, err = startServer(bin, filepath.Join(dir, "main"), "-rate-limit", "0", "-owner-rate-limit", "0"); err != nil {
		return 1, err
	}
	defer primary.stop()
	limits := []string{"-rate-limit", "1", "-rate-burst", "1"}
	for _, f := range []string{"owner-rate-limit", "owner-rate-burst"} {
		if hasFlag(bin, f) { // owner routes' limit, once the server has it
			limits = append(limits, "-"+f, "1")
		}
	}
	if limited, err = startServer(bin, filepath.Join(dir, "limited"), limits...); err != nil {
		return 1, err
	}
	defer limited.stop()

	// Keys the examples stand for, made before the reload that deactivates
	// org-closed and downgrades org-down.
	if revoked, err = primary.createKey(""); err != nil {
		return 1, err
	}
	if err := primary.revokeKey(revoked.id); err != nil {
		return 1, err
	}
	if inactiveKey, err = primary.createKey("org-closed"); err != nil {
		return 1, err
	}
	if downKey, err = primary.createKey("org-down"); err != nil {
		return 1, err
	}
	if expiredKey, err = primary.createKey(""); err != nil {
		return 1, err
	}
	if err := primary.lifetimeCall("PATCH", expiredKey.id, `{"expiresAt":"2026-01-01T00:00:00+00:00"}`, 200); err != nil {
		return 1, err
	}
	if rotatedKey, err = primary.createKey(""); err != nil {
		return 1, err
	}
	if err := primary.lifetimeCall("POST", rotatedKey.id+"/rotate", `{"overlapHours":1}`, 201); err != nil {
		return 1, err
	}
	if seatedKey, err = primary.createKeyWith("", `{"instanceName":"apitest","maxInstances":1}`); err != nil {
		return 1, err
	}
	if err := primary.validate(seatedKey.key, `"instanceId":"apitest-instance","instanceName":"apitest","instanceUrl":"https://Apitest.example/","metrics":{"companyCount":1}`); err != nil {
		return 1, err
	}
	if releaseKey, err = primary.createKey(""); err != nil {
		return 1, err
	}
	if err := primary.validate(releaseKey.key, `"instanceUrl":"https://apitest.example"`); err != nil {
		return 1, err
	}
	if err := primary.reload(); err != nil {
		return 1, err
	}
	code := m.Run()
	reportCauses()
	reportUnreached()
	return code, nil
}

var quotedPath = regexp.MustCompile(` for '[^']*'`)

// fail reports a case's problems and tallies them by cause.
func fail(t *testing.T, what string, r request, a answer, probs []string) {
	t.Helper()
	t.Errorf("%s\n  sent: %s\n  got:  %d %s\n  %s", what, r, a.status, clip(a.body), strings.Join(probs, "\n  "))
	reachedMu.Lock()
	defer reachedMu.Unlock()
	for _, p := range probs {
		if strings.HasPrefix(p, "  at ") {
			continue // detail of the line before
		}
		p = quotedPath.ReplaceAllString(p, "")
		causes[p] = append(causes[p], t.Name())
	}
}

// reportCauses prints the failures grouped by cause, most frequent first.
func reportCauses() {
	if len(causes) == 0 {
		return
	}
	keys := make([]string, 0, len(causes))
	for k := range causes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(causes[keys[i]]) != len(causes[keys[j]]) {
			return len(causes[keys[i]]) > len(causes[keys[j]])
		}
		return keys[i] < keys[j]
	})
	fmt.Printf("apitest: failures by cause:\n")
	for _, k := range keys {
		cases := causes[k]
		fmt.Printf("%4d  %s\n", len(cases), k)
		for i, c := range cases {
			if i == 3 {
				fmt.Printf("        ... and %d more\n", len(cases)-3)
				break
			}
			fmt.Printf("        %s\n", c)
		}
	}
}

// ranExamples and ranCrawl say which tests ran: the unreached report needs both.
var ranExamples, ranCrawl bool

// reportUnreached prints the documented statuses no example or probe got.
func reportUnreached() {
	if !ranExamples || !ranCrawl {
		return
	}
	var missing []string
	for _, op := range doc.operations() {
		for _, code := range op.statuses() {
			k := op.name() + " " + code
			if !reached[k] {
				missing = append(missing, k)
			}
		}
	}
	if len(missing) > 0 {
		fmt.Printf("apitest: documented answers no example or probe reached (%d):\n  %s\n",
			len(missing), strings.Join(missing, "\n  "))
	}
}

// substitute replaces the document's stand-in key ids and license keys in
// s with real ones; a fresh active key is made for each call that needs one.
func substitute(s string) (string, error) {
	if strings.Contains(s, exActiveID) || strings.Contains(s, exActiveKey) {
		k, err := primary.createKey("")
		if err != nil {
			return "", err
		}
		s = strings.NewReplacer(exActiveID, k.id, exActiveKey, k.key).Replace(s)
	}
	return strings.NewReplacer(exRevokedID, revoked.id, exRevokedKey, revoked.key,
		exInactiveKey, inactiveKey.key, exDowngradedKey, downKey.key,
		exExpiredKey, expiredKey.key, exRotatedID, rotatedKey.id,
		exSeatedID, seatedKey.id, exSeatedKey, seatedKey.key, exReleaseID, releaseKey.id).Replace(s), nil
}

// request is what a test sends.
type request struct {
	method string
	path   string // with path parameters filled in, without the query
	query  string
	header http.Header
	body   []byte
	server *server
}

// answer is what came back.
type answer struct {
	req    *http.Request
	res    *http.Response
	body   []byte
	status int
}

func (r request) String() string {
	s := r.method + " " + r.path
	if r.query != "" {
		s += "?" + r.query
	}
	if len(r.body) > 0 {
		b := r.body
		if len(b) > 160 {
			b = append(slices.Clone(b[:160]), "..."...)
		}
		s += " " + strconv.Quote(string(b))
	}
	return s
}

func (r request) send() (answer, error) {
	srv := r.server
	if srv == nil {
		srv = primary
	}
	u := srv.url + r.path
	if r.query != "" {
		u += "?" + r.query
	}
	var body io.Reader = http.NoBody
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, u, body)
	if err != nil {
		return answer{}, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return answer{}, err
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	return answer{req: req, res: res, body: b, status: res.StatusCode}, nil
}

// authHeader sets the Authorization header for an x-test auth value.
func authHeader(h http.Header, auth string) error {
	switch auth {
	case "owner":
		h.Set("Authorization", "Bearer "+ownerToken)
	case "member":
		h.Set("Authorization", "Bearer "+memberToken)
	case "invalid":
		h.Set("Authorization", "Bearer lk_not_a_configured_token")
	case "none":
	default:
		return fmt.Errorf("x-test auth %q: want owner, member, invalid or none", auth)
	}
	return nil
}

// record notes that the server answered op with a's status.
func record(op operation, a answer) {
	if a.req.Method == op.method {
		reachedMu.Lock()
		reached[op.name()+" "+strconv.Itoa(a.status)] = true
		reachedMu.Unlock()
	}
}

// conforms checks that a answers op as the document says: the status is
// documented for op (or, for a method op's path does not list, by the path's
// x-other-methods response), and the headers and body match. It returns the
// problems found, one per line.
func conforms(op operation, a answer) []string {
	var probs []string
	resp := op.response(a.status)
	listed := a.req.Method == op.method
	if !listed {
		resp, _ = doc.otherMethods(op.item)
	}
	if resp == nil {
		what := fmt.Sprintf("status %d is not documented for %s (documented: %s)", a.status, op.name(), strings.Join(op.statuses(), ", "))
		if !listed {
			what = fmt.Sprintf("%s %s answered %d; the path lists %s, so other methods should get 405 as its x-other-methods says",
				a.req.Method, op.path, a.status, strings.Join(op.allowed(), ", "))
		}
		return []string{what}
	}
	ct := a.res.Header.Get("Content-Type")
	schema, declared := schemaOf(resp, ct)
	if resp.Content != nil && resp.Content.Len() > 0 && !declared {
		var want []string
		for k := range resp.Content.KeysFromOldest() {
			want = append(want, k)
		}
		probs = append(probs, fmt.Sprintf("Content-Type %q, documented %s", ct, strings.Join(want, " or ")))
	}
	if listed {
		if ok, errs := doc.validator.ValidateHttpResponse(a.req, a.res); !ok {
			probs = append(probs, describe(errs)...)
		}
		a.res.Body = io.NopCloser(bytes.NewReader(a.body))
	} else {
		if a.status != http.StatusMethodNotAllowed {
			probs = append(probs, fmt.Sprintf("%s %s answered %d; the path lists %s, so other methods should get 405",
				a.req.Method, op.path, a.status, strings.Join(op.allowed(), ", ")))
		}
		probs = append(probs, checkHeaders(resp, a.res.Header)...)
		if schema != nil && isJSON(ct) {
			probs = append(probs, validateBody(schema, a.body)...)
		}
		if allow := a.res.Header.Get("Allow"); !sameMethods(allow, op.allowed()) {
			probs = append(probs, fmt.Sprintf("Allow: %q, want the path's methods %s", allow, strings.Join(op.allowed(), ", ")))
		}
		if text, ok := xError(resp); ok {
			probs = append(probs, sameError(strings.ReplaceAll(text, "{allow}", allowList(op.allowed())), a.body)...)
		}
	}
	// The validator does not decode bodies of other media types: check a
	// string schema (the PEM and Prometheus texts) here.
	if declared && schema != nil && !isJSON(ct) {
		probs = append(probs, validateText(schema, a.body)...)
	}
	return probs
}

// xError returns a response's x-error extension: the exact error text of
// its answers.
func xError(resp *v3.Response) (string, bool) {
	if resp == nil || resp.Extensions == nil {
		return "", false
	}
	n := resp.Extensions.GetOrZero("x-error")
	if n == nil {
		return "", false
	}
	return n.Value, true
}

// sameError compares the error text of an answer's body with want, exactly.
func sameError(want string, body []byte) []string {
	var got struct{ Error *string }
	if json.Unmarshal(body, &got) != nil || got.Error == nil {
		return []string{fmt.Sprintf("the body has no error text; documented %q", want)}
	}
	if *got.Error != want {
		return []string{scalarDiff("error", want, *got.Error)}
	}
	return nil
}

// allowList is the Allow list of a path that documents methods: those
// methods and HEAD wherever GET is, sorted, as the {allow} of an x-error.
func allowList(methods []string) string {
	l := slices.Clone(methods)
	if slices.Contains(l, http.MethodGet) && !slices.Contains(l, http.MethodHead) {
		l = append(l, http.MethodHead)
	}
	slices.Sort(l)
	return strings.Join(l, ", ")
}

func isJSON(ct string) bool { return strings.Contains(strings.ToLower(ct), "json") }

// sameMethods reports whether an Allow header names the documented methods
// (HEAD, implied by GET, is ignored).
func sameMethods(allow string, documented []string) bool {
	var got []string
	for _, m := range strings.Split(allow, ",") {
		if m = strings.ToUpper(strings.TrimSpace(m)); m != "" && m != http.MethodHead {
			got = append(got, m)
		}
	}
	want := slices.Clone(documented)
	sort.Strings(got)
	sort.Strings(want)
	return slices.Equal(got, want)
}

// checkHeaders checks the response's required headers are present.
func checkHeaders(resp *v3.Response, h http.Header) []string {
	var probs []string
	if resp.Headers == nil {
		return nil
	}
	for name, hd := range resp.Headers.FromOldest() {
		if hd.Required && h.Get(name) == "" {
			probs = append(probs, "missing header "+name)
		}
	}
	return probs
}

var schemaValidator = schema_validation.NewSchemaValidator()

func validateBody(schema *base.Schema, body []byte) []string {
	if ok, errs := schemaValidator.ValidateSchemaBytes(schema, body); !ok {
		return describe(errs)
	}
	return nil
}

func validateText(schema *base.Schema, body []byte) []string {
	if ok, errs := schemaValidator.ValidateSchemaObject(schema, string(body)); !ok {
		return describe(errs)
	}
	return nil
}

// describe turns the validator's errors into one line each: the message
// and, for schema failures, where and why.
func describe(errs []*liberrors.ValidationError) []string {
	var out []string
	for _, e := range errs {
		if len(e.SchemaValidationErrors) == 0 {
			line := e.Message
			if e.Reason != "" && e.Reason != e.Message && !strings.Contains(e.Message, e.Reason) {
				line += ": " + e.Reason
			}
			out = append(out, line)
			continue
		}
		for _, f := range e.SchemaValidationErrors {
			loc := f.FieldPath
			if loc == "" {
				loc = "$"
			}
			out = append(out, fmt.Sprintf("%s: at %s: %s", e.Message, loc, f.Reason))
		}
	}
	return out
}
