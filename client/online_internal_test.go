package client

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// FuzzAnswer feeds arbitrary server answers to the client's decoding: it
// must never panic, and never accept an answer the key did not sign.
func FuzzAnswer(f *testing.F) {
	f.Add(200, "Fri, 20 Feb 2026 10:30:00 GMT", `kid="k1", alg="ed25519", sig="AAAA"`, []byte(`{"valid":true,"plan":"business","nonce":"x"}`))
	f.Add(401, "", "", []byte(`{"valid":false,"error":"Invalid or revoked license key"}`))
	f.Add(429, "garbage", `kid="", alg="", sig=""`, []byte(`not json`))
	f.Add(200, "Fri, 20 Feb 2026 10:30:00 GMT", "", []byte(`{"features":{"a":[1,{"b":null}]},"violations":[1,2]}`))
	c := &Client{keys: fuzzKeys, cfg: Config{LicenseKey: "k", GracePeriod: time.Hour, ClockTolerance: time.Hour, FallbackPlan: "community"}}
	f.Fuzz(func(t *testing.T, status int, date, sig string, body []byte) {
		ans := signedAnswer{Status: status, Date: date, Signature: sig, Body: body}
		if _, err := c.answerLicense(ans); err == nil {
			t.Fatal("accepted an answer that no key signed")
		}
		c.trust(ans, "n")
		c.answerError(ans)
		c.revokedIDs(ans, "org")
		var st cacheState
		json.Unmarshal(body, &st)
		st.latestSeen()
		http.ParseTime(date)
	})
}
