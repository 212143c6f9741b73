package licensing

import (
	"encoding/json"
	"testing"

	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

var decodeSeeds = []string{
	`{"licenseKey":"abc","instanceName":"prod","instanceUrl":"https://a.example"}`,
	`  {  "licenseKey" : "abc" , "instanceId":"i-1", "nonce":"n" }  ` + "\n",
	`{}`, ` { } `, `{"licenseKey":""}`,
	`{"licenseKey":"a","licenseKey":"b"}`,          // duplicate: the last wins
	`{"LicenseKey":"abc"}`, `{"licensekey":"abc"}`, // other case: encoding/json matches it
	`{"licenseKey":"a\"b"}`, `{"licenseKey":"a\\b"}`, // escapes
	`{"licenseKey":"\u00e9"}`, `{"instanceName":"é 日本 \u2028"}`,
	"{\"instanceName\":\"bad \xff utf8\"}", // invalid UTF-8: U+FFFD in encoding/json
	"{\"instanceName\":\"tab\there\"}",     // raw control character: invalid JSON
	`{"licenseKey":null}`, `{"licenseKey":1}`, `{"licenseKey":true}`, `{"licenseKey":["a"]}`,
	`{"metrics":{"users":3},"licenseKey":"a"}`, `{"metrics":null}`,
	`{"other":"x","licenseKey":"a"}`,
	`{"licenseKey":"a",}`, `{"licenseKey":"a"`, `{"licenseKey":"a"}}`, `{"licenseKey":"a"} x`,
	`{"licenseKey" "a"}`, `{"licenseKey":"a" "b":"c"}`, `{licenseKey:"a"}`, `[]`, `"a"`, `null`,
	`{"licenseKey":"a"}{}`, `{"licenseKey":"unterminated}`, `{"`, `{`, "\ufeff{}",
}

// TestDecodeFastAgreesWithEncodingJSON: whatever decodeValidateFast accepts,
// json.Unmarshal accepts too and decodes to the same request.
func TestDecodeFastAgreesWithEncodingJSON(t *testing.T) {
	accepted := 0
	for _, in := range decodeSeeds {
		t.Run(in, func(t *testing.T) {
			if checkDecodeFast(t, []byte(in)) { // checkDecodeFast makes its own is.New(t)
				accepted++
			}
		})
	}
	is := is.New(t)
	is.True(accepted >= 6) // the usual bodies take the fast path
}

func checkDecodeFast(t *testing.T, in []byte) bool {
	t.Helper()
	is := is.New(t)
	fast := wire.ValidateRequest{InstanceName: "untouched"}
	if !decodeValidateFast(in, &fast) {
		is.Equal(fast, wire.ValidateRequest{InstanceName: "untouched"}) // refused: req left alone
		return false
	}
	var slow wire.ValidateRequest
	is.NoErr(json.Unmarshal(in, &slow)) // encoding/json accepts it too
	is.Equal(fast, slow)                // and makes the same of it
	return true
}

func FuzzDecodeFast(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecodeFast(t, in) })
}
