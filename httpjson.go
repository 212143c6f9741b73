package licensing

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/licensekit/licensing/internal/wire"
)

// decode reads a bounded JSON body into v. An empty body means no fields.
// Invalid UTF-8 is refused, naming the field, rather than turned into
// U+FFFD as encoding/json would.
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) error {
	buf := getBuf()
	defer putBuf(buf)
	body, err := readBody(*buf, http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	*buf = body
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{Code: codeTooLarge, Message: "Request body too large; the limit is " + strconv.FormatInt(h.cfg.MaxBodyBytes, 10) + " bytes."}
		}
		return &Error{Code: CodeInvalid, Message: "Could not read the request body.", Err: err}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	// The body is JSON whatever its declared type: the seed system decodes
	// any body, and curl -d declares a form. Cross-site forms are refused
	// by the owner routes' origin check, not by the media type.
	if !utf8.Valid(body) {
		return &Error{Code: CodeInvalid, Message: badTextField(body, utf8.Valid) + " must be valid UTF-8"}
	}
	if b := bytes.TrimLeft(body, " \t\r\n"); b[0] != '{' {
		return &Error{Code: CodeInvalid, Message: "Malformed JSON body."} // null, an array, a string, a number
	}
	if bytes.IndexByte(body, '\\') >= 0 && loneSurrogate(body) {
		// encoding/json would turn "\ud800" into U+FFFD, as it would raw
		// invalid bytes: refused the same way
		return &Error{Code: CodeInvalid, Message: badTextField(body, func(b []byte) bool { return !loneSurrogate(b) }) + " must be valid UTF-8"}
	}
	if req, ok := v.(*wire.ValidateRequest); ok && decodeValidateFast(body, req) {
		return nil // the usual validate body, without reflection
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			if typeErr.Field == "metrics" && typeErr.Type.Kind().String() == "float64" {
				if strings.HasPrefix(typeErr.Value, "number") {
					return errMetricValue // a number too large for a float64: 1e400
				}
				return errMetricType
			}
			return &Error{Code: CodeInvalid, Message: typeErr.Field + " must be " + jsonKind(typeErr.Type.Kind().String())}
		}
		return &Error{Code: CodeInvalid, Message: "Malformed JSON body."}
	}
	if req, ok := v.(*wire.ValidateRequest); ok && len(req.Metrics) > 0 && bytes.Contains(body, []byte("null")) && nullMetric(body) {
		return errMetricType
	}
	return nil
}

var errMetricType = &Error{Code: CodeInvalid, Message: "metrics values must be numbers"}

// nullMetric reports whether the metrics object of body has a null value,
// which encoding/json would quietly decode as 0.
func nullMetric(body []byte) bool {
	var m struct {
		Metrics map[string]*float64 `json:"metrics"`
	}
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	for _, v := range m.Metrics {
		if v == nil {
			return true
		}
	}
	return false
}

// readBody appends all of rd to buf, as io.ReadAll does into a fresh slice.
func readBody(buf []byte, rd io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string", "ptr":
		return "a string"
	case "float64":
		return "a number"
	case "map", "struct":
		return "an object"
	}
	return "of another type"
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// maxNonceLength bounds the nonce of signed requests.
const maxNonceLength = 128

func checkNonce(n string) error {
	if len(n) > maxNonceLength || strings.IndexFunc(n, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
		return &Error{Code: CodeInvalid, Message: "nonce must be at most 128 printable ASCII characters"}
	}
	return nil
}

// badTextField names the top-level field of a JSON object body whose name
// or raw value fails valid, or "the request body". Only a name that looks
// like a field (a letter, then at most 31 letters or digits) is repeated,
// so an answer never echoes a long or odd string of the caller's, a license
// key pasted as a field name among them.
func badTextField(body []byte, valid func([]byte) bool) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return "the request body"
	}
	names := slices.Sorted(maps.Keys(fields))
	for _, name := range names {
		if !valid(fields[name]) || !utf8.ValidString(name) {
			if !isFieldName(name) {
				break
			}
			return name
		}
	}
	return "the request body"
}

// loneSurrogate reports whether the JSON text b escapes half of a UTF-16
// surrogate pair without the other half ("\ud800", "\udc00"), which is no
// character. Backslashes occur only in strings, so b is scanned as is.
func loneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, ok := escapedRune(b[i:])
		switch {
		case !ok:
			i++ // another escape: skip the escaped byte
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := escapedRune(b[i+6:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}

// escapedRune decodes a \uXXXX escape at the start of b.
func escapedRune(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[2:6]), 16, 32)
	return rune(v), err == nil
}

func isFieldName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// decodeValidateFast decodes the usual validate body, an object of string fields
// without escapes, without reflection. It reports false, and leaves req
// alone, for anything else (other or differently cased keys, metrics,
// escapes, nulls, invalid UTF-8, malformed JSON); the caller then decodes
// with encoding/json. When it reports true, req is what json.Unmarshal
// would have made of body (decode_test.go checks this).
func decodeValidateFast(body []byte, req *wire.ValidateRequest) bool {
	var out wire.ValidateRequest
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		i++
	} else {
		for {
			key, next, ok := fastString(body, i)
			if !ok {
				return false
			}
			i = skipSpace(body, next)
			if i >= len(body) || body[i] != ':' {
				return false
			}
			val, next, ok := fastString(body, skipSpace(body, i+1))
			if !ok {
				return false
			}
			var field *string
			switch string(key) { // no allocation: compared in place
			case "licenseKey":
				field = &out.LicenseKey
			case "instanceName":
				field = &out.InstanceName
			case "instanceUrl":
				field = &out.InstanceURL
			case "instanceId":
				field = &out.InstanceID
			case "nonce":
				field = &out.Nonce
			default:
				return false
			}
			*field = string(val)
			i = skipSpace(body, next)
			if i >= len(body) {
				return false
			}
			if body[i] == '}' {
				i++
				break
			}
			if body[i] != ',' {
				return false
			}
			i = skipSpace(body, i+1)
		}
	}
	if skipSpace(body, i) != len(body) {
		return false
	}
	*req = out
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// fastString reads a JSON string at b[i] that needs no unescaping: no
// backslash, no control character, valid UTF-8. It returns its contents and
// the index after the closing quote.
func fastString(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	ascii := true
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s = b[i+1 : j]
			if !ascii && !utf8.Valid(s) {
				return nil, 0, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}

// bufPool holds the buffers of request bodies and answers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// putBuf returns b to the pool unless it grew large (a big body must not
// stay pinned).
func putBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
