package apitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pb33f/go-yaml"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// docPath is the document under test, docs/openapi.yaml, read through a
// symbolic link inside this module: go test's result cache rechecks only the
// files a test opens inside its module, so a change to the document alone
// would otherwise leave a stale "ok (cached)".
const docPath = "testdata/openapi.yaml"

// contract is the loaded document and a validator over it.
type contract struct {
	model     *v3.Document
	validator validator.Validator
	text      []byte // the document as read
}

func loadContract() (*contract, error) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", docPath, err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", docPath, err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", docPath, errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		var msgs []string
		for _, e := range verrs {
			msgs = append(msgs, e.Error())
			for _, f := range e.SchemaValidationErrors {
				msgs = append(msgs, "  "+f.Error())
			}
		}
		return nil, fmt.Errorf("%s is not a valid OpenAPI document:\n%s", docPath, strings.Join(msgs, "\n"))
	}
	return &contract{model: &m.Model, validator: v, text: b}, nil
}

// operation is one (path, method) of the document.
type operation struct {
	path   string
	method string
	item   *v3.PathItem
	op     *v3.Operation
}

// name is how failures and subtests name the operation.
func (o operation) name() string { return o.method + " " + o.path }

// secured reports whether the operation takes a bearer token.
func (o operation) secured() bool {
	for _, s := range o.op.Security {
		if s != nil && s.Requirements != nil && s.Requirements.Len() > 0 {
			return true
		}
	}
	return false
}

// params returns the operation's parameters, path item's first.
func (o operation) params() []*v3.Parameter {
	return append(slices.Clone(o.item.Parameters), o.op.Parameters...)
}

// allowed returns the methods the path documents.
func (o operation) allowed() []string {
	var out []string
	for m := range o.item.GetOperations().KeysFromOldest() {
		out = append(out, strings.ToUpper(m))
	}
	return out
}

// operations returns every operation of the document, in document order.
func (c *contract) operations() []operation {
	var out []operation
	for path, item := range c.model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			out = append(out, operation{path: path, method: strings.ToUpper(method), item: item, op: op})
		}
	}
	return out
}

// response returns the documented response of op for status, or nil.
func (o operation) response(status int) *v3.Response {
	if o.op.Responses == nil || o.op.Responses.Codes == nil {
		return nil
	}
	return o.op.Responses.Codes.GetOrZero(strconv.Itoa(status))
}

// statuses returns the documented statuses of op.
func (o operation) statuses() []string {
	var out []string
	for code := range o.op.Responses.Codes.KeysFromOldest() {
		out = append(out, code)
	}
	return out
}

// xTest is the x-test extension of a response example: how to send its
// request where the request examples do not say (see the document's
// description).
type xTest struct {
	Auth        string            `yaml:"auth"`
	Headers     map[string]string `yaml:"headers"`
	Body        *string           `yaml:"body"`
	BodyBytes   int               `yaml:"bodyBytes"`
	ContentType string            `yaml:"contentType"`
	Server      string            `yaml:"server"`
	Query       string            `yaml:"query"`
	Alg         string            `yaml:"alg"`
	Skip        string            `yaml:"skip"`
	Match       []string          `yaml:"match"`
	Present     []string          `yaml:"present"`
}

// example is one named example of an operation: the response it documents
// and what its request is made of.
type example struct {
	name     string
	status   int
	response *base.Example
	x        xTest
	body     []byte            // the request body example, nil for none
	params   map[string]string // "in:name" -> value, from parameter examples of the same name
}

// examples returns the operation's examples: one per named response example,
// with the request body and parameter examples of the same name.
func (o operation) examples() ([]example, error) {
	var out []example
	seen := map[string]int{}
	for code, resp := range o.op.Responses.Codes.FromOldest() {
		status, err := strconv.Atoi(code)
		if err != nil {
			return nil, fmt.Errorf("%s: response %q is not a status code", o.name(), code)
		}
		if resp.Content == nil {
			continue
		}
		for _, mt := range resp.Content.FromOldest() {
			if mt.Examples == nil {
				continue
			}
			for name, ex := range mt.Examples.FromOldest() {
				if prev, dup := seen[name]; dup {
					return nil, fmt.Errorf("%s: example %q documents both %d and %d", o.name(), name, prev, status)
				}
				seen[name] = status
				e := example{name: name, status: status, response: ex, params: map[string]string{}}
				if ex.Extensions != nil {
					if n := ex.Extensions.GetOrZero("x-test"); n != nil {
						if err := n.Decode(&e.x); err != nil {
							return nil, fmt.Errorf("%s: example %q: x-test: %w", o.name(), name, err)
						}
					}
				}
				if o.op.RequestBody != nil && o.op.RequestBody.Content != nil {
					if jm := o.op.RequestBody.Content.GetOrZero("application/json"); jm != nil && jm.Examples != nil {
						if rex := jm.Examples.GetOrZero(name); rex != nil {
							if e.body, err = nodeJSON(rex.Value); err != nil {
								return nil, fmt.Errorf("%s: request example %q: %w", o.name(), name, err)
							}
						}
					}
				}
				for _, p := range o.params() {
					if p.Examples == nil {
						continue
					}
					if pex := p.Examples.GetOrZero(name); pex != nil {
						var v any
						if err := pex.Value.Decode(&v); err != nil {
							return nil, err
						}
						e.params[p.In+":"+p.Name] = fmt.Sprint(v)
					}
				}
				out = append(out, e)
			}
		}
	}
	// A request example with no response example of its name would never be sent.
	var names []string
	if rb := o.op.RequestBody; rb != nil && rb.Content != nil {
		if jm := rb.Content.GetOrZero("application/json"); jm != nil && jm.Examples != nil {
			for name := range jm.Examples.KeysFromOldest() {
				names = append(names, "request body example "+name)
			}
		}
	}
	for _, p := range o.params() {
		if p.Examples != nil {
			for name := range p.Examples.KeysFromOldest() {
				names = append(names, p.Name+" example "+name)
			}
		}
	}
	for _, n := range names {
		name := n[strings.LastIndex(n, " ")+1:]
		if _, ok := seen[name]; !ok {
			return nil, fmt.Errorf("%s: %s has no response example of that name", o.name(), n)
		}
	}
	return out, nil
}

// defaultPathValue is the first example of a path parameter, used by
// examples that do not name one.
func (o operation) defaultPathValue(name string) string {
	for _, p := range o.params() {
		if p.In == "path" && p.Name == name && p.Examples != nil && p.Examples.Len() > 0 {
			var v any
			p.Examples.First().Value().Value.Decode(&v)
			return fmt.Sprint(v)
		}
	}
	return "x"
}

// nodeJSON turns a YAML example value into JSON.
func nodeJSON(n *yaml.Node) ([]byte, error) {
	if n == nil {
		return nil, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// otherMethods returns the component response a path answers for methods
// it does not list (its x-other-methods extension).
func (c *contract) otherMethods(item *v3.PathItem) (*v3.Response, string) {
	if item.Extensions == nil {
		return nil, ""
	}
	n := item.Extensions.GetOrZero("x-other-methods")
	if n == nil {
		return nil, ""
	}
	return c.model.Components.Responses.GetOrZero(n.Value), n.Value
}

// schemaOf returns the response's schema for a media type (parameters
// ignored), and whether the response declares that media type.
func schemaOf(resp *v3.Response, contentType string) (*base.Schema, bool) {
	if resp == nil || resp.Content == nil {
		return nil, false
	}
	mt := strings.TrimSpace(strings.ToLower(strings.Split(contentType, ";")[0]))
	m := resp.Content.GetOrZero(mt)
	if m == nil {
		return nil, false
	}
	if m.Schema == nil {
		return nil, true
	}
	return m.Schema.Schema(), true
}

// unknownPath returns the response every path under the API prefix that the
// document does not list answers (its x-unknown-path extension).
func (c *contract) unknownPath() *v3.Response {
	if c.model.Extensions == nil {
		return nil
	}
	n := c.model.Extensions.GetOrZero("x-unknown-path")
	if n == nil {
		return nil
	}
	return c.model.Components.Responses.GetOrZero(n.Value)
}

// methods the crawl tries on every path: OPTIONS is a browser's CORS
// preflight, which the document answers with 405 like any other method.
var crawlMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
