package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestExamples sends every example of the document and checks the answer has
// the example's status and matches the documented schema and headers.
func TestExamples(t *testing.T) {
	is := is.New(t)
	ranExamples = true
	n := 0
	for _, op := range doc.operations() {
		exs, err := op.examples()
		is.NoErr(err) // the document's examples are well formed
		for _, ex := range exs {
			n++
			t.Run(op.name()+"/"+ex.name, func(t *testing.T) {
				is := is.New(t)
				if ex.x.Skip != "" {
					t.Skipf("x-test skip: %s", ex.x.Skip)
				}
				req, err := exampleRequest(op, ex)
				is.NoErr(err)
				a, err := req.send()
				is.NoErr(err)
				if ex.x.Server == "rate-limited" { // the first one empties the bucket
					a, err = req.send()
					is.NoErr(err)
				}
				record(op, a)
				var probs []string
				if a.status != ex.status {
					probs = append(probs, fmt.Sprintf("status %d, documented %d", a.status, ex.status))
				}
				probs = append(probs, conforms(op, a)...)
				probs = append(probs, exampleChecks(op, ex, req, a)...)
				if a.status == ex.status {
					probs = append(probs, sameScalars(ex, a.body)...)
				}
				if len(probs) > 0 {
					fail(t, fmt.Sprintf("%s example %q", op.name(), ex.name), req, a, probs)
				}
			})
		}
	}
	is.True(n > 0) // the document has examples
}

// exampleRequest builds the request of an example.
func exampleRequest(op operation, ex example) (request, error) {
	r := request{method: op.method, path: op.path, header: http.Header{}}
	if ex.x.Server == "rate-limited" {
		r.server = limited
	}
	auth := ex.x.Auth
	if auth == "" {
		auth = "none"
		if op.secured() {
			auth = "owner"
		}
	}
	if err := authHeader(r.header, auth); err != nil {
		return r, err
	}
	for k, v := range ex.x.Headers {
		r.header.Set(k, v)
	}
	q := url.Values{}
	for _, p := range op.params() {
		v, ok := ex.params[p.In+":"+p.Name]
		switch {
		case p.In == "path":
			if !ok {
				v = op.defaultPathValue(p.Name)
			}
			r.path = strings.ReplaceAll(r.path, "{"+p.Name+"}", url.PathEscape(v))
		case p.In == "query" && ok:
			q.Set(p.Name, v)
		case p.In == "header" && ok:
			r.header.Set(p.Name, v)
		}
	}
	r.query = q.Encode()
	if ex.x.Query != "" {
		if r.query != "" {
			r.query += "&"
		}
		r.query += ex.x.Query
	}
	switch {
	case ex.x.Body != nil:
		r.body = []byte(*ex.x.Body)
	case ex.x.BodyBytes > 0:
		pad := ex.x.BodyBytes - len(`{"instanceName":""}`)
		r.body = []byte(`{"instanceName":"` + strings.Repeat("x", max(pad, 0)) + `"}`)
	case ex.body != nil:
		r.body = ex.body
	}
	if r.body != nil {
		ct := ex.x.ContentType
		if ct == "" {
			ct = "application/json"
		}
		r.header.Set("Content-Type", ct)
	}
	s, err := substitute(r.path + "\n" + r.query + "\n" + string(r.body))
	if err != nil {
		return r, err
	}
	parts := strings.SplitN(s, "\n", 3)
	r.path, r.query = parts[0], parts[1]
	if r.body != nil {
		r.body = []byte(parts[2])
	}
	return r, nil
}

// exampleChecks are the checks beyond the schema that an example's request
// asks for: signed answers to a nonce, the algorithm of a token, the key
// format of a created key.
func exampleChecks(op operation, ex example, req request, a answer) []string {
	var probs []string
	srv := req.server
	if srv == nil {
		srv = primary
	}
	var body map[string]any
	json.Unmarshal(a.body, &body)
	required := false
	if resp := op.response(a.status); resp != nil && resp.Headers != nil {
		if h := resp.Headers.GetOrZero("Licensing-Signature"); h != nil {
			required = h.Required
		}
	}
	if (required || hasNonce(req)) && a.status != http.StatusMethodNotAllowed && a.status != http.StatusRequestEntityTooLarge {
		probs = append(probs, checkSignature(srv, a)...)
	}
	if ex.x.Alg != "" {
		jwt, _ := body["jwt"].(string)
		keyID := ""
		if m := keyPath.FindStringSubmatch(req.path); m != nil {
			keyID = m[1]
		}
		probs = append(probs, checkToken(srv, jwt, ex.x.Alg, keyID)...)
	}
	if strings.HasSuffix(op.path, ".pem") && a.status == http.StatusOK {
		probs = append(probs, checkPEM(srv, a.body)...)
	}
	if len(ex.x.Match) > 0 {
		var want map[string]any
		if b, err := nodeJSON(ex.response.Value); err != nil || json.Unmarshal(b, &want) != nil {
			return append(probs, "x-test match: the example's value is not a JSON object")
		}
		for _, f := range ex.x.Match {
			w, _ := json.Marshal(want[f])
			g, _ := json.Marshal(body[f])
			if _, ok := body[f]; !ok || string(w) != string(g) {
				probs = append(probs, fmt.Sprintf("%s is %s, documented %s", f, g, w))
			}
		}
	}
	for _, f := range ex.x.Present {
		if _, ok := body[f]; !ok {
			probs = append(probs, fmt.Sprintf("%s is missing", f))
		}
	}
	if key, ok := body["licenseKey"].(string); ok && a.status == http.StatusCreated && !validKey(key) {
		probs = append(probs, "licenseKey's last 8 characters are not the CRC-32 of its first 56")
	}
	return probs
}

var keyPath = regexp.MustCompile(`/keys/([^/]+)/jwt$`)

// madeAnew are the fields whose values the server makes for each answer:
// an example's value of them stands for any value (the schema checks it).
var madeAnew = map[string]bool{"id": true, "licenseKey": true, "createdAt": true, "expiresAt": true, "jwt": true, "nextCursor": true,
	"rotatedFrom": true} // the id of the fresh key each example with the active key's id gets

// sameScalars compares every top-level scalar field of ex's value (the error
// text, valid, status, reason, plan, ...) but those in madeAnew with the
// answer's, exactly: a documented text that drifts from what the server
// sends is a failure, with the place they part.
func sameScalars(ex example, body []byte) []string {
	var want map[string]any
	if b, err := nodeJSON(ex.response.Value); err != nil || json.Unmarshal(b, &want) != nil {
		return nil // not a JSON object (PEM, metrics): the schema checks it
	}
	var got map[string]any
	if json.Unmarshal(body, &got) != nil {
		return []string{"the answer is not a JSON object; documented " + clip([]byte(mustJSON(want)))}
	}
	names := slices.Sorted(maps.Keys(want))
	var probs []string
	for _, f := range names {
		w := want[f]
		switch w.(type) {
		case map[string]any, []any:
			continue // match, when the example asks, and the schema check these
		}
		if madeAnew[f] {
			continue
		}
		g, ok := got[f]
		switch {
		case !ok:
			probs = append(probs, fmt.Sprintf("%s is missing; documented %s", f, mustJSON(w)))
		case mustJSON(g) != mustJSON(w):
			probs = append(probs, scalarDiff(f, w, g))
		}
	}
	return probs
}

// scalarDiff shows a documented and an answered value one above the other,
// with a caret where they part.
func scalarDiff(field string, documented, answered any) string {
	d, a := mustJSON(documented), mustJSON(answered)
	if ds, ok := documented.(string); ok {
		d = strconv.QuoteToASCII(ds)
	}
	if as, ok := answered.(string); ok {
		a = strconv.QuoteToASCII(as)
	}
	n := 0
	for n < len(d) && n < len(a) && d[n] == a[n] {
		n++
	}
	return fmt.Sprintf("%s differs from the document:\n      documented: %s\n      answered:   %s\n                  %s^",
		field, d, a, strings.Repeat(" ", n))
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var goodNonce = regexp.MustCompile(`^[ -~]{1,128}$`)

// hasNonce reports whether the request carries a valid nonce, in its query
// or its JSON body: its answer must be signed.
func hasNonce(r request) bool {
	q, _ := url.ParseQuery(r.query)
	var b struct{ Nonce any }
	json.Unmarshal(r.body, &b)
	n, _ := b.Nonce.(string)
	return goodNonce.MatchString(q.Get("nonce")) || goodNonce.MatchString(n)
}

func validKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(k[:56]))) == k[56:]
}

// TestExamplesMatchSchemas checks the document against itself: every
// response example is valid under the schema it illustrates.
func TestExamplesMatchSchemas(t *testing.T) {
	is := is.New(t)
	// Read the document again inside the test run: go test records only the
	// files tests open after TestMain hands over, so this makes a change to
	// the document invalidate a cached result.
	b, err := os.ReadFile(docPath)
	is.NoErr(err)
	is.True(bytes.Equal(b, doc.text)) // the document did not change during the run
	n := 0
	for _, op := range doc.operations() {
		for code, resp := range op.op.Responses.Codes.FromOldest() {
			if resp.Content == nil {
				continue
			}
			for ct, mt := range resp.Content.FromOldest() {
				if mt.Schema == nil || mt.Examples == nil {
					continue
				}
				for name, ex := range mt.Examples.FromOldest() {
					n++
					var probs []string
					if isJSON(ct) {
						b, err := nodeJSON(ex.Value)
						is.NoErr(err)
						probs = validateBody(mt.Schema.Schema(), b)
					} else {
						var s string
						is.NoErr(ex.Value.Decode(&s))
						probs = validateText(mt.Schema.Schema(), []byte(s))
					}
					if len(probs) > 0 {
						t.Errorf("%s %s example %q does not match its schema:\n  %s", op.name(), code, name, strings.Join(probs, "\n  "))
					}
				}
			}
		}
	}
	is.True(n > 0)
}
