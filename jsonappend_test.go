package licensing

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/licensekit/licensing/internal/wire"
	"github.com/matryer/is"
)

type textish string // a named type: goes to encoding/json

func (t textish) MarshalText() ([]byte, error) { return []byte("<" + string(t) + ">"), nil }

func TestAppendValidateResponseMatchesEncodingJSON(t *testing.T) {
	awkward := "quote\" back\\slash <script>&amp; \b\f\n\r\t\x00\x1f\x7f é 日本 \u2028\u2029 bad:\xff\xfe\xc3 end"
	when := wire.Time(time.Date(2026, 2, 3, 4, 5, 6, 789, time.FixedZone("X", -5*3600)))
	zero := wire.Time(time.Time{})
	days, negDays := 3, -1
	cases := []struct {
		name string
		v    wire.ValidateAnswer
	}{
		{"zero value: nil features and violations", wire.ValidateAnswer{}},
		{"typical", wire.ValidateAnswer{Valid: true, Plan: "business",
			Features:       map[string]any{"selfHostingLicense": true, "maxCompanies": 10.0, "maxUsersPerOrg": 0.0},
			OrganizationID: "org-1", OrganizationName: "Acme", Violations: []string{}, BillingURL: "https://billing.example/upgrade?a=1&b=2"}},
		{"awkward strings everywhere", wire.ValidateAnswer{Valid: true, Plan: awkward,
			Features:       map[string]any{awkward: awkward, "": "", "\u2028": "<>"},
			OrganizationID: awkward, OrganizationName: awkward, Violations: []string{awkward, "", "ok"},
			BillingURL: awkward, Nonce: "n<o>n&ce"}},
		{"floats", wire.ValidateAnswer{Features: map[string]any{
			"a1e21": 1e21, "a1e20": 1e20, "b1e-7": 1e-7, "b1e-6": 1e-6, "c-0": math.Copysign(0, -1), "d0": 0.0,
			"eInt": 42.0, "fBig": 123456789012345678.0, "gSmall": 5e-324, "hMax": math.MaxFloat64,
			"iNeg": -1.5e-10, "jFrac": 0.1, "kThird": 1.0 / 3, "l32": float32(1e-7), "m32": float32(3.4e38),
			"n32": float32(0.1), "oNeg32": float32(-1e21)}}},
		{"integers and other types", wire.ValidateAnswer{Features: map[string]any{
			"int": 7, "int64": int64(-9007199254740993), "int32": int32(-5), "uint": uint(8), "uint64": uint64(math.MaxUint64),
			"int8": int8(-8), "uint16": uint16(16), "text": textish("x&y"), "bytes": []byte("hi"),
			"strings": []string{"a", "<b>"}, "time": time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC)}}},
		{"nulls, numbers, nesting", wire.ValidateAnswer{Features: map[string]any{
			"null": nil, "num": json.Number("1.50e+10"), "numEmpty": json.Number(""), "numNeg": json.Number("-0.0"),
			"bool": false, "emptyMap": map[string]any{}, "nilMap": map[string]any(nil),
			"emptySlice": []any{}, "nilSlice": []any(nil),
			"nested":   map[string]any{"z": map[string]any{"y": []any{1.0, "two", nil, true, map[string]any{"b": 1.0, "a": json.Number("2")}}}, "a": 1e-7},
			"typedMap": map[string]int{"b": 2, "a": 1}}}},
		{"many keys, sorted bytewise", wire.ValidateAnswer{Features: manyKeys(40)}},
		{"times and trial", wire.ValidateAnswer{Valid: true, CurrentPeriodEnd: &when, TrialEndsAt: &when, TrialDaysLeft: &days, ExpiresAt: &when}},
		{"zero times", wire.ValidateAnswer{CurrentPeriodEnd: &zero, TrialEndsAt: &zero, TrialDaysLeft: &negDays, ExpiresAt: &zero}},
		{"nil violations", wire.ValidateAnswer{Valid: true, Features: map[string]any{}, Violations: nil}},
		{"deep nesting past the hand-written limit", wire.ValidateAnswer{Features: deep(40)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			want, err := json.Marshal(tc.v)
			is.NoErr(err)
			got, err := appendValidateResponse([]byte("prefix"), &tc.v)
			is.NoErr(err)
			is.Equal(string(got), "prefix"+string(want))
		})
	}
}

func TestAppendValidateResponseFailsWhereEncodingJSONFails(t *testing.T) {
	cases := []struct {
		name string
		v    any
	}{
		{"NaN", math.NaN()},
		{"+Inf", math.Inf(1)},
		{"-Inf float32", float32(math.Inf(-1))},
		{"invalid number", json.Number("1.2.3")},
		{"number with space", json.Number(" 1")},
		{"channel", make(chan int)},
		{"nested NaN", map[string]any{"a": []any{math.NaN()}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			v := wire.ValidateAnswer{Features: map[string]any{"f": tc.v}}
			_, want := json.Marshal(v)
			is.True(want != nil)
			_, err := appendValidateResponse(nil, &v)
			is.True(err != nil)
		})
	}
}

func TestValidJSONNumber(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "-1.5", "1e5", "1E+5", "1.0e-5", "123456789", "0.000"} {
		is := is.New(t)
		is.True(validJSONNumber(s))
	}
	for _, s := range []string{"", "-", "01", "1.", ".5", "+1", "1e", "1e+", "0x10", "1.5e5.5", "NaN", "- 1"} {
		is := is.New(t)
		is.True(!validJSONNumber(s))
	}
}

func manyKeys(n int) map[string]any {
	m := map[string]any{}
	for i := 0; i < n; i++ {
		m[strings.Repeat(string(rune('z'-i%26)), i%5+1)+string(rune('A'+i))] = float64(i)
	}
	m["É"], m["e"], m["E"], m["_"] = 1.0, 2.0, 3.0, 4.0
	return m
}

func deep(n int) map[string]any {
	m := map[string]any{"leaf": 1e21}
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			m = map[string]any{"d": m, "n": float64(i)}
		} else {
			m = map[string]any{"s": []any{m, nil}}
		}
	}
	return m
}
