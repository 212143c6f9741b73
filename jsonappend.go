package licensing

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/licensekit/licensing/internal/wire"
)

// The validate answer is the hot path's only encoding: it is appended to a
// pooled buffer here, without reflection, and must stay byte for byte what
// encoding/json makes of validateResponse (jsonappend_test.go compares the
// two over awkward values).

// appendValidateResponse appends the JSON of v, as json.Marshal(v) would
// produce it, to dst. It fails where json.Marshal fails (NaN or infinite
// numbers, invalid json.Number, values encoding/json cannot encode).
func appendValidateResponse(dst []byte, v *wire.ValidateAnswer) ([]byte, error) {
	var err error
	dst = append(dst, `{"valid":`...)
	dst = strconv.AppendBool(dst, v.Valid)
	dst = append(dst, `,"plan":`...)
	dst = appendJSONString(dst, v.Plan)
	dst = append(dst, `,"features":`...)
	if dst, err = appendJSONObject(dst, v.Features, 0); err != nil {
		return dst, err
	}
	dst = append(dst, `,"organizationId":`...)
	dst = appendJSONString(dst, v.OrganizationID)
	dst = append(dst, `,"organizationName":`...)
	dst = appendJSONString(dst, v.OrganizationName)
	dst = append(dst, `,"violations":`...)
	if v.Violations == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, s := range v.Violations {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, s)
		}
		dst = append(dst, ']')
	}
	if v.CurrentPeriodEnd != nil {
		dst = append(dst, `,"currentPeriodEnd":`...)
		dst = appendJSONTime(dst, time.Time(*v.CurrentPeriodEnd))
	}
	if v.TrialEndsAt != nil {
		dst = append(dst, `,"trialEndsAt":`...)
		dst = appendJSONTime(dst, time.Time(*v.TrialEndsAt))
	}
	if v.TrialDaysLeft != nil {
		dst = append(dst, `,"trialDaysLeft":`...)
		dst = strconv.AppendInt(dst, int64(*v.TrialDaysLeft), 10)
	}
	if v.ExpiresAt != nil {
		dst = append(dst, `,"expiresAt":`...)
		dst = appendJSONTime(dst, time.Time(*v.ExpiresAt))
	}
	if v.BillingURL != "" {
		dst = append(dst, `,"billingUrl":`...)
		dst = appendJSONString(dst, v.BillingURL)
	}
	if v.Nonce != "" {
		dst = append(dst, `,"nonce":`...)
		dst = appendJSONString(dst, v.Nonce)
	}
	return append(dst, '}'), nil
}

// appendJSONTime is jsonTime.MarshalJSON without its allocations.
func appendJSONTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, wire.TimeLayout)
	return append(dst, '"')
}

// maxJSONDepth bounds the nesting appendJSONValue follows itself; deeper
// values go to encoding/json, which has its own cycle detection.
const maxJSONDepth = 32

// appendJSONValue appends v as encoding/json encodes an interface value.
// The types plan features hold are encoded here; any other type is handed
// to json.Marshal, so the bytes are the same either way.
func appendJSONValue(dst []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case string:
		return appendJSONString(dst, x), nil
	case float64:
		return appendJSONFloat(dst, x, 64)
	case float32:
		return appendJSONFloat(dst, float64(x), 32)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case json.Number:
		s := string(x)
		if s == "" {
			s = "0"
		}
		if !validJSONNumber(s) {
			return dst, errors.New("json: invalid number literal " + strconv.Quote(s))
		}
		return append(dst, s...), nil
	case map[string]any:
		if depth < maxJSONDepth {
			return appendJSONObject(dst, x, depth+1)
		}
	case []any:
		if depth < maxJSONDepth {
			if x == nil {
				return append(dst, "null"...), nil
			}
			dst = append(dst, '[')
			for i, e := range x {
				if i > 0 {
					dst = append(dst, ',')
				}
				var err error
				if dst, err = appendJSONValue(dst, e, depth+1); err != nil {
					return dst, err
				}
			}
			return append(dst, ']'), nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendJSONObject appends m with its keys sorted, as encoding/json does.
func appendJSONObject(dst []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = appendJSONValue(dst, m[k], depth); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendJSONFloat formats f as encoding/json does (ES6 number formatting).
func appendJSONFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, errors.New("json: unsupported value: " + strconv.FormatFloat(f, 'g', -1, bits))
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// e-09 becomes e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does with HTML
// escaping: <, >, & and U+2028, U+2029 as \u escapes, invalid UTF-8 as
// U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// validJSONNumber reports whether s is a JSON number (RFC 8259, section 6).
func validJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}
