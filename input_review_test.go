package licensing_test

import (
	"strings"
	"testing"

	"github.com/matryer/is"
)

// TestReviewEscapedLoneSurrogate (review): issue 10 asks that invalid text
// never be stored as U+FFFD with a 201/200 but refused with a 400 naming the
// field. Raw invalid bytes are refused; the same invalid text written as a
// JSON escape of a lone UTF-16 surrogate ("\ud800") is decoded by
// encoding/json to U+FFFD and accepted and stored.
func TestReviewEscapedLoneSurrogate(t *testing.T) {
	for _, tc := range []struct{ name, path, token, body string }{
		{"create instanceName", "/api/v1/licensing/keys", "t-owner", `{"instanceName":"a\ud800b"}`},
		{"validate instanceName", "/api/v1/licensing/validate", "", `{"licenseKey":"KEY","instanceName":"a\udfffb"}`},
		{"validate metric name", "/api/v1/licensing/validate", "", `{"licenseKey":"KEY","metrics":{"users\ud800":1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			e := newEnvHTTP(t, nil, nil)
			_, key := e.create(t, "t-owner", "x")
			r := e.do(t, "POST", tc.path, tc.token, strings.ReplaceAll(tc.body, "KEY", key))
			if r.status < 400 {
				stored := e.do(t, "GET", "/api/v1/licensing/keys", "t-owner", "").raw
				t.Errorf("%s: answered %d; stored as U+FFFD: %v", tc.name, r.status, strings.Contains(stored, "\uFFFD"))
			}
			is.True(r.status == 400)
		})
	}
}
