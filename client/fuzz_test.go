package client

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

// A fixed key set for the fuzzers (public key of an all-zero seed).
var fuzzKeys = func() keySet {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	return keySet{"k1": publicKey{alg: "EdDSA", ed: priv.Public().(ed25519.PublicKey)}}
}()

func FuzzParseToken(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	enc := base64.RawURLEncoding.EncodeToString
	h, p := enc([]byte(`{"alg":"EdDSA","typ":"JWT","kid":"k1"}`)), enc([]byte(`{"iss":"x","sub":"o","plan":"p","exp":1}`))
	f.Add(h + "." + p + "." + enc(ed25519.Sign(priv, []byte(h+"."+p))))
	f.Add("a.b.c")
	f.Add("..")
	f.Add(enc([]byte(`{"alg":"none","kid":"k1"}`)) + "." + p + ".")
	f.Fuzz(func(t *testing.T, token string) {
		if _, err := parseToken(fuzzKeys, token); err != nil {
			return
		}
		// accepted: then the key really signed it
		parts := strings.Split(token, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		if !ed25519.Verify(fuzzKeys["k1"].ed, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatalf("accepted %q without a valid signature", token)
		}
	})
}

// FuzzParseSignatureHeader feeds arbitrary Licensing-Signature values to
// the client's check of an answer: it must never panic, and never accept a
// header that does not carry the key's real signature of the answer.
func FuzzParseSignatureHeader(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	date, body := "Fri, 20 Feb 2026 10:30:00 GMT", []byte("{}")
	f.Add(wire.FormatSignature("k1", ed25519.Sign(priv, wire.SignedString(200, "k1", date, body))))
	f.Add(`kid="k1", alg="ed25519", sig="` + base64.StdEncoding.EncodeToString(make([]byte, 64)) + `"`)
	f.Add(`kid="k1",alg="ed25519"`)
	f.Add(`sig="=="`)
	f.Add(`kid=k1`)
	f.Fuzz(func(t *testing.T, v string) {
		if fuzzKeys.verifyAnswer(200, v, date, body) != nil {
			return
		}
		kid, sig, err := wire.ParseSignature(v)
		if err != nil || kid != "k1" || !ed25519.Verify(fuzzKeys["k1"].ed, wire.SignedString(200, kid, date, body), sig) {
			t.Fatalf("accepted %q without the key's signature", v)
		}
	})
}

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
