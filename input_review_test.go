package licensing_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestReviewKeyInStoredFieldsInOtherSpellings (review3). Promise (commit
// af52fec: "A license key (or any run of 64 hex characters, percent-encoded
// too) in instanceName, instanceUrl or a metric name is refused with a 400
// naming the field: no key is stored or listed in clear"; SECURITY.md:
// "no key reaches the store or a list that way").
//
// Reproduction: a real key sent by POST /validate (real HTTP) in spellings
// a person or a program reads back at once; then GET /keys.
//
// Observed: 200 for each; the record is stored and the owner's list shows
// the value (every subtest logs the listed value). Expected: 400 "... must
// not hold a license key".
//
// Root cause: input.go holdsKey sees only an unbroken run of ASCII hex;
// checkText (instanceName) never applies percentDecoded (only
// checkInstanceURL does, and only once, so %2561 survives); isName refuses
// Cc and Cf (U+200B/C/D, U+2060, U+00AD, U+FEFF, U+180E are refused: held)
// but not the invisible default-ignorable characters outside Cf: U+034F,
// U+FE0F, U+E0101, U+17B4 (Mn), U+3164, U+115F (Lo), U+2800 (So), nor
// fullwidth digits/letters (U+FF10.., NFKC-equal to the key).
func TestReviewKeyInStoredFieldsInOtherSpellings(t *testing.T) {
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = 0 })
	_, key := e.create(t, "t-owner", "prod")
	enc := func(format string, sep string) string {
		var b strings.Builder
		for i := 0; i < len(key); i++ {
			if i > 0 {
				b.WriteString(sep)
			}
			fmt.Fprintf(&b, format, key[i])
		}
		return b.String()
	}
	fullwidth := ""
	for _, r := range key {
		if r <= '9' {
			fullwidth += string(r - '0' + '０')
		} else {
			fullwidth += string(r - 'a' + 'ａ')
		}
	}
	grouped := ""
	for i := 0; i < len(key); i += 4 {
		if i > 0 {
			grouped += "-"
		}
		grouped += key[i : i+4]
	}
	tests := []struct{ name, extra string }{
		{"instanceName percent-encoded", `"instanceName":"` + enc("%%%02x", "") + `"`},
		{"instanceUrl percent-encoded twice", `"instanceUrl":"https://app.example.com/` + enc("%%25%02x", "") + `"`},
		{"instanceName with U+034F (Mn, invisible) between digits", `"instanceName":"` + enc("%c", "\u034f") + `"`},
		{"instanceName with U+FE0F (Mn, invisible) between digits", `"instanceName":"` + enc("%c", "\ufe0f") + `"`},
		{"instanceName in fullwidth digits and letters", `"instanceName":"` + fullwidth + `"`},
		{"instanceName grouped by 4 with hyphens", `"instanceName":"` + grouped + `"`},
		{"instanceUrl host labels of 32", `"instanceUrl":"https://` + key[:32] + `.` + key[32:] + `.example.com/"`},
		{"split across instanceName and instanceUrl", `"instanceName":"` + key[:32] + `","instanceUrl":"https://app.example.com/` + key[32:] + `"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "POST", validatePath, "", validateBody(key, tc.extra))
			if r.status == 200 {
				is.NoErr(e.svc.Flush(t.Context()))
				list := e.do(t, "GET", keysPath, "t-owner", "")
				t.Logf("listed: %.600s", list.raw)
			}
			is.Equal(r.status, 400) // a key in another spelling is still the key
		})
	}
}
