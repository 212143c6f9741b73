package licensing_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

// TestKeyInOtherSpellingsIsRefused: a key a person or a program reads back
// at once is still the key: percent-encoded (once or twice, in any field),
// in fullwidth digits and letters, with invisible marks between its digits.
// A key split on purpose (separators, across fields) is not recognized:
// SECURITY.md says so.
func TestKeyInOtherSpellingsIsRefused(t *testing.T) {
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
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
	tests := []struct{ name, extra string }{
		{"instanceName percent-encoded", `"instanceName":"` + enc("%%%02x", "") + `"`},
		{"instanceUrl percent-encoded twice", `"instanceUrl":"https://app.example.com/` + enc("%%25%02x", "") + `"`},
		{"instanceName with U+034F (Mn, invisible) between digits", `"instanceName":"` + enc("%c", "\u034f") + `"`},
		{"instanceName with U+FE0F (Mn, invisible) between digits", `"instanceName":"` + enc("%c", "\ufe0f") + `"`},
		{"instanceName in fullwidth digits and letters", `"instanceName":"` + fullwidth + `"`},
		{"instanceName in upper-case fullwidth", `"instanceName":"` + strings.ToUpper(fullwidth) + `"`},
		{"instanceName with U+2800 (braille blank) between digits", `"instanceName":"` + enc("%c", "\u2800") + `"`},
		{"instanceName with U+3164 (Hangul filler) between digits", `"instanceName":"` + enc("%c", "\u3164") + `"`},
		{"instanceName with U+E0101 (variation selector) between digits", `"instanceName":"` + enc("%c", "\U000e0101") + `"`},
		{"instanceName percent-encoded twice", `"instanceName":"` + enc("%%25%02x", "")[:5*20] + key[20:] + `"`},
		{"metric name in fullwidth", `"metrics":{"` + fullwidth + `":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "POST", validatePath, "", validateBody(key, tc.extra))
			is.Equal(r.status, 400) // a key in another spelling is still the key
			is.True(strings.HasSuffix(r.body["error"].(string), "must not hold a license key (64 hex characters)"))
		})
	}
}
