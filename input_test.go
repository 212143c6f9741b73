package licensing_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/licensekit/licensing"
	"github.com/matryer/is"
)

func TestInstanceURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://factura.example.ro", true},
		{"http://factura.example.ro:8080/storno?x=1", true},
		{"HTTPS://FACTURA.EXAMPLE.RO", true},
		{"https://[2001:db8::1]:8443/", true},
		{"app.example.com", true}, // Storno's FRONTEND_URL, sent verbatim
		{"app.example.com:8443", true},
		{"app.example.com/storno", true},
		{"localhost:8080", true},
		{"10.0.0.7:8000/app", true},
		{"javascript:alert(1)", false},
		{"javascript:1", false},
		{"JavaScript://example.com/%0aalert(1)", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"ftp://files.example.com", false},
		{"mailto:ops@example.com", false},
		{"https://", false},
		{"https://user:pass@example.com", true}, // stored as sent; the seed system kept any value
		{"http://storno:8000", true},            // a container's service name
		{"http://storno-app:8000/", true},
		{"http://storno_app:8000", true},
		{"http://intranet/facturi", true},
		{"https://factură.ro", true},
		{"factură.ro/storno", true},
		{" https://factura.example.ro ", true}, // surrounding white space
		{"storno_app.example:8000", true},
		{"http://storno:0", false},
		{"http://storno:99999", false},
		{"http://:8000", false},
		{" ", false},
		{"localhost:8080 /x", false},
		{"user@example.com", false},
		{"example", false},
		{"app.example.com:0", false},
		{"app.example.com:99999", false},
		{"app.example.com:http", false},
		{"-bad-.example.com", false},
		{"app example.com", false},
		{"app.example.com\u202e", false},
		{"//app.example.com", false},
		{"\\\\app.example.com", false},
		{"https://x.example/" + strings.Repeat("a", 2048), false},
	}
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	_, key := e.create(t, "t-owner", "prod")
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "POST", validatePath, "", validateBody(key, `"instanceUrl":`+jsonString(tc.url)))
			if !tc.ok {
				is.Equal(r.status, 400)
				is.True(strings.HasPrefix(r.body["error"].(string), "instanceUrl must be")) // names the field
				return
			}
			is.Equal(r.status, 200)
			is.NoErr(e.svc.Flush(t.Context()))
			list := e.do(t, "GET", keysPath, "t-owner", "")
			got := list.body["keys"].([]any)[0].(map[string]any)["instanceUrl"]
			is.Equal(got, tc.url) // stored and listed as sent
		})
	}
}

func TestInvalidUTF8IsRefusedNamingTheField(t *testing.T) {
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	_, key := e.create(t, "t-owner", "prod")
	tests := []struct{ name, path, field, body string }{
		{"raw byte", validatePath, "instanceName", `{"licenseKey":"` + key + "\",\"instanceName\":\"a\xffb\"}"},
		{"raw byte", validatePath, "instanceUrl", `{"licenseKey":"` + key + "\",\"instanceUrl\":\"https://a\xc3.example\"}"},
		{"raw surrogate", validatePath, "metrics", `{"licenseKey":"` + key + "\",\"metrics\":{\"users\xed\xa0\x80\":1}}"},
		{"raw byte", validatePath, "licenseKey", "{\"licenseKey\":\"" + key[:63] + "\xff\"}"},
		{"raw byte", validatePath, "nonce", `{"licenseKey":"` + key + "\",\"nonce\":\"n\x80\"}"},
		// the same invalid text written as JSON escapes of half a surrogate pair
		{"escaped high surrogate", validatePath, "instanceName", `{"licenseKey":"` + key + `","instanceName":"a\ud800b"}`},
		{"escaped low surrogate", validatePath, "instanceName", `{"licenseKey":"` + key + `","instanceName":"a\uDFFFb"}`},
		{"escaped high surrogate at the end", validatePath, "instanceName", `{"licenseKey":"` + key + `","instanceName":"a\ud800"}`},
		{"two high surrogates", validatePath, "instanceName", `{"licenseKey":"` + key + `","instanceName":"\ud800\ud800"}`},
		{"escaped surrogate in a metric name", validatePath, "metrics", `{"licenseKey":"` + key + `","metrics":{"users\ud800":1}}`},
		{"escaped surrogate in create", keysPath, "instanceName", `{"instanceName":"a\ud800b"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name+" "+tc.field, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "POST", tc.path, "t-owner", tc.body)
			is.Equal(r.status, 400)
			is.Equal(r.body["error"], tc.field+" must be valid UTF-8") // not silently turned into U+FFFD
		})
	}
	for _, ok := range []string{`"a\ud83d\ude00b"`, `"\\ud800"`, `"\ufffd"`, `"\u00e9"`} {
		t.Run("accepted "+ok, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "POST", validatePath, "", `{"licenseKey":"`+key+`","instanceName":`+ok+`}`)
			is.Equal(r.status, 200) // a pair, an escaped backslash, U+FFFD itself, a plain escape
		})
	}
}

func TestBodyThatIsNotAnObject(t *testing.T) {
	e := newEnv(t, nil)
	for _, body := range []string{"null", " null ", "[]", `"x"`, "1", "true"} {
		t.Run(body, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "POST", keysPath, "t-owner", body)
			is.Equal(r.status, 400)
			is.Equal(r.body["error"], "Malformed JSON body.")
		})
	}
}

func TestOrganizationCountViolationByDefault(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil) // org-1's plan defines no maxOrganizations
	_, key := e.create(t, "t-owner", "prod")
	r := e.do(t, "POST", validatePath, "", validateBody(key, `"metrics":{"orgCount":2,"companyCount":3}`))
	is.Equal(r.status, 200)
	is.Equal(r.body["violations"], []any{"Multiple organizations detected (2). Self-hosted licenses allow 1."}) // the seed system's text
	r = e.do(t, "POST", validatePath, "", validateBody(key, `"metrics":{"orgCount":1}`))
	is.Equal(r.body["violations"], []any{}) // one organization is allowed
	e.orgs.update("org-1", func(o *licensing.Organization) { o.Features["maxOrganizations"] = 5.0 })
	r = e.do(t, "POST", validatePath, "", validateBody(key, `"metrics":{"orgCount":6}`))
	is.Equal(r.body["violations"], []any{"Multiple organizations detected (6). Self-hosted licenses allow 5."}) // the plan's own limit
	e.orgs.update("org-1", func(o *licensing.Organization) { o.Features["maxOrganizations"] = 0.0 })
	r = e.do(t, "POST", validatePath, "", validateBody(key, `"metrics":{"orgCount":60}`))
	is.Equal(r.body["violations"], []any{}) // 0 is unlimited
}

func TestRevocationsCheckTheNonceBeforeSigning(t *testing.T) {
	is := is.New(t)
	e := newEnv(t, nil)
	bad := strings.Repeat("n\x01", 2500)
	r := e.do(t, "GET", "/api/v1/licensing/revocations?nonce="+strings.ReplaceAll(bad, "\x01", "%01"), "", "")
	is.Equal(r.status, 400)
	is.Equal(r.header.Get(licensing.SignatureHeader), "") // nothing signed
	is.True(!strings.Contains(r.raw, "n\u0001"))          // nothing echoed
	r = e.do(t, "GET", "/api/v1/licensing/revocations?nonce=ok-123", "", "")
	is.Equal(r.status, 400) // org missing: refused, signed, with the valid nonce
	is.True(r.header.Get(licensing.SignatureHeader) != "")
	is.Equal(r.body["nonce"], "ok-123")
}

func TestNewWarnsAboutEphemeralSigningKeys(t *testing.T) {
	is := is.New(t)
	var log bytes.Buffer
	svc, err := licensing.New(licensing.Config{Store: licensing.NewMemoryStore(), Organizations: &testOrgs{},
		Pepper: testPepper, Policy: licensing.Policy{Issuer: "i"}, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	is.NoErr(err)
	defer svc.Close(t.Context())
	is.True(strings.Contains(log.String(), "last only as long as this process")) // said once, at New
}

func TestEmptyIssuerCannotIssueTokens(t *testing.T) {
	is := is.New(t)
	_, err := licensing.New(licensing.Config{Store: licensing.NewMemoryStore(), Organizations: &testOrgs{}, Pepper: testPepper})
	is.Equal(licensing.ErrorCode(err), licensing.CodeInvalid) // New refuses a Config without an issuer
	is.True(strings.Contains(err.Error(), "Issuer"))
	e := newEnv(t, nil)
	is.True(e.svc.SetPolicy(licensing.Policy{}) != nil) // and SetPolicy a Policy without one
	id, _ := e.create(t, "t-owner", "prod")
	r := e.do(t, "POST", keysPath+"/"+id+"/jwt", "t-owner", "")
	is.Equal(r.status, 200) // the previous policy, with its issuer, stays
}

// TestKeyInAStoredFieldIsRefused: a license key (ours, or a seed-system key
// without a checksum) in any field the store keeps and the list shows is
// refused with a 400 that names the field and does not repeat the value;
// the key is stored nowhere.
func TestKeyInAStoredFieldIsRefused(t *testing.T) {
	e := newEnvHTTP(t, nil, func(c *licensing.HandlerConfig) { c.RateLimit = licensing.Unlimited })
	_, key := e.create(t, "t-owner", "prod")
	seed := "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2" // the seed document's example key
	var pct strings.Builder
	for i := 0; i < len(key); i++ {
		fmt.Fprintf(&pct, "%%%02x", key[i])
	}
	tests := []struct {
		name, path, body, field string
	}{
		{"create instanceName", keysPath, `{"instanceName":"prod ` + key + `"}`, "instanceName"},
		{"create instanceName, seed key", keysPath, `{"instanceName":"` + seed + `"}`, "instanceName"},
		{"create instanceName, upper case", keysPath, `{"instanceName":"` + strings.ToUpper(key) + `"}`, "instanceName"},
		{"validate instanceName", validatePath, validateBody(key, `"instanceName":"x`+key+`y"`), "instanceName"},
		{"validate instanceUrl query", validatePath, validateBody(key, `"instanceUrl":"https://app.example.com/?licenseKey=`+key+`"`), "instanceUrl"},
		{"validate instanceUrl path", validatePath, validateBody(key, `"instanceUrl":"app.example.com/`+key+`"`), "instanceUrl"},
		{"validate instanceUrl percent-encoded", validatePath, validateBody(key, `"instanceUrl":"https://app.example.com/`+pct.String()+`"`), "instanceUrl"},
		{"validate instanceUrl percent-encoded after a stray %", validatePath, validateBody(key, `"instanceUrl":"https://app.example.com/%zz`+pct.String()+`"`), "instanceUrl"},
		{"validate metric name", validatePath, validateBody(key, `"metrics":{"`+key+`":1}`), "metric names"},
		{"validate metric name, seed key", validatePath, validateBody(key, `"metrics":{"`+seed+`":1}`), "metric names"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r := e.do(t, "POST", tc.path, "t-owner", tc.body)
			is.Equal(r.status, 400)
			is.Equal(r.body["error"], tc.field+" must not hold a license key (64 hex characters)")
			is.True(!strings.Contains(strings.ToLower(r.raw), key)) // never repeated
			is.NoErr(e.svc.Flush(t.Context()))
			list := e.do(t, "GET", keysPath, "t-owner", "")
			is.True(!strings.Contains(strings.ToLower(list.raw), key[:32])) // stored nowhere
			is.True(!strings.Contains(list.raw, seed[:32]))
		})
	}
	t.Run("63 hex characters are a name", func(t *testing.T) {
		is := is.New(t)
		r := e.do(t, "POST", validatePath, "", validateBody(key, `"instanceName":"`+key[:63]+`"`))
		is.Equal(r.status, 200)
	})
}

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
