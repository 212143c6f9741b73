package licensing

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// decode reads a bounded JSON body into v. An empty body means no fields.
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
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !isJSONMediaType(ct) {
		return &Error{Code: codeUnsupportedMedia, Message: "Request body must be JSON (Content-Type: application/json)."}
	}
	if f, ok := v.(interface{ decodeFast([]byte) bool }); ok && f.decodeFast(body) {
		return nil // the usual validate body, without reflection
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			if typeErr.Field == "metrics" && typeErr.Type.Kind().String() == "float64" {
				return &Error{Code: CodeInvalid, Message: "metrics values must be numbers"}
			}
			return &Error{Code: CodeInvalid, Message: typeErr.Field + " must be " + jsonKind(typeErr.Type.Kind().String())}
		}
		return &Error{Code: CodeInvalid, Message: "Malformed JSON body."}
	}
	return nil
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

// isJSONMediaType reports whether a Content-Type other than the exact
// "application/json" still names it (parameters, case, spaces).
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
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

// TimeLayout is the API's time format: UTC with a numeric offset, seconds.
const TimeLayout = "2006-01-02T15:04:05-07:00"

// jsonTime encodes as TimeLayout in UTC, or null when zero.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + tt.UTC().Format(TimeLayout) + `"`), nil
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
