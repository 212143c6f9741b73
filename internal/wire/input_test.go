package wire_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing"
	"github.com/licensekit/licensing/internal/wire"
)

var aKey = strings.Repeat("ab", 32) // 64 hex characters, as a key is

func TestCheckInstanceURL(t *testing.T) {
	tests := []struct {
		url  string
		want error
	}{
		{"", nil},
		{"https://factura.example.ro", nil},
		{"http://storno-app:8000", nil}, // a container's service name
		{"http://facturi/", nil},        // an intranet name
		{"http://my_app.internal:8080/x?y#z", nil},
		{"https://bücher.example/", nil},
		{"http://user@app.example", nil},
		{"  https://app.example.com ", nil},            // surrounding spaces
		{"https://app.example.com\n", wire.ErrInvalid}, // a control character, even at the end
		{"HTTP://APP.EXAMPLE", nil},
		{"http://[::1]:8080/", nil},
		{"app.example.com", nil},
		{"app.example.com:8443/storno", nil},
		{"localhost:8080", nil},
		{"10.0.0.7:8000/app", nil},
		{"storno-app:8000", wire.ErrInvalid}, // a bare single label needs a scheme
		{"facturi", wire.ErrInvalid},
		{"javascript:alert(1)", wire.ErrInvalid},
		{"ftp://files.example.com", wire.ErrInvalid},
		{"http://", wire.ErrInvalid},
		{"http://app.example:0", wire.ErrInvalid},
		{"http://app.example:65536", wire.ErrInvalid},
		{"http://app example.com", wire.ErrInvalid},
		{`http://app.example\x`, wire.ErrInvalid},
		{"http://app.example/\u202e", wire.ErrInvalid}, // a bidi override
		{"http://app.example/\x00", wire.ErrInvalid},
		{"http://app.example/\xff", wire.ErrInvalid},
		{"user@app.example.com", wire.ErrInvalid},
		{"   ", wire.ErrInvalid},
		{"https://app.example/" + strings.Repeat("a", wire.MaxInstanceURLLength), wire.ErrInvalid},
		{"https://app.example/?k=" + aKey, wire.ErrHoldsKey},
		{"https://app.example/?k=" + strings.ToUpper(aKey), wire.ErrHoldsKey},
		{"https://app.example/?k=" + aKey[:32] + "%61" + aKey[33:], wire.ErrHoldsKey}, // percent-encoded
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.url), func(t *testing.T) {
			is := is.New(t)
			is.Equal(wire.CheckInstanceURL(tc.url), tc.want)
		})
	}
}

func TestCheckInstanceFields(t *testing.T) {
	tests := []struct {
		name  string
		check func(string) error
		value string
		want  error
	}{
		{"empty name", wire.CheckInstanceName, "", nil},
		{"name", wire.CheckInstanceName, "Factura — Cluj", nil},
		{"longest name", wire.CheckInstanceName, strings.Repeat("ă", wire.MaxInstanceNameLength), nil},
		{"name too long", wire.CheckInstanceName, strings.Repeat("ă", wire.MaxInstanceNameLength+1), wire.ErrInvalid},
		{"name with a newline", wire.CheckInstanceName, "a\nb", wire.ErrInvalid},
		{"name with a format character", wire.CheckInstanceName, "a\u200bb", wire.ErrInvalid},
		{"name of invalid UTF-8", wire.CheckInstanceName, "a\xc3", wire.ErrInvalid},
		{"name holding a key", wire.CheckInstanceName, "prod " + aKey, wire.ErrHoldsKey},
		{"name with 63 hex digits", wire.CheckInstanceName, aKey[1:], nil},
		{"empty id", wire.CheckInstanceID, "", nil},
		{"id", wire.CheckInstanceID, "0f3a-host_1", nil},
		{"longest id", wire.CheckInstanceID, strings.Repeat("x", wire.MaxInstanceIDLength), nil},
		{"id too long", wire.CheckInstanceID, strings.Repeat("x", wire.MaxInstanceIDLength+1), wire.ErrInvalid},
		{"id with a space", wire.CheckInstanceID, "a b", wire.ErrInvalid},
		{"id beyond ASCII", wire.CheckInstanceID, "é", wire.ErrInvalid},
		{"id a dot segment", wire.CheckInstanceID, ".", wire.ErrInvalid},
		{"id a dot-dot segment", wire.CheckInstanceID, "..", wire.ErrInvalid},
		{"id of three dots", wire.CheckInstanceID, "...", nil},
		{"metric name", wire.CheckMetricName, "userCount", nil},
		{"longest metric name", wire.CheckMetricName, strings.Repeat("ş", wire.MaxMetricNameLength), nil},
		{"empty metric name", wire.CheckMetricName, "", wire.ErrInvalid},
		{"metric name too long", wire.CheckMetricName, strings.Repeat("ş", wire.MaxMetricNameLength+1), wire.ErrInvalid},
		{"metric name with a tab", wire.CheckMetricName, "a\tb", wire.ErrInvalid},
		{"metric name holding a key", wire.CheckMetricName, aKey, wire.ErrHoldsKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(tc.check(tc.value), tc.want)
		})
	}
}

func TestCheckMetricValue(t *testing.T) {
	tests := []struct {
		v    float64
		want error
	}{
		{0, nil},
		{math.Copysign(0, -1), nil},
		{3, nil},
		{math.MaxFloat64, nil},
		{-1, wire.ErrInvalid},
		{-math.SmallestNonzeroFloat64, wire.ErrInvalid},
		{math.NaN(), wire.ErrInvalid},
		{math.Inf(1), wire.ErrInvalid},
		{math.Inf(-1), wire.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.v), func(t *testing.T) {
			is := is.New(t)
			is.Equal(wire.CheckMetricValue(tc.v), tc.want)
		})
	}
}

// validator is a Service whose answer says whether its input checks refused
// a ValidateInput: CodeInvalid, or else the unknown key's refusal that
// comes after them.
func validator(t *testing.T) func(licensing.ValidateInput) bool {
	t.Helper()
	signing, err := licensing.GenerateSigningKeys(0)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := licensing.New(licensing.Config{Store: licensing.NewMemoryStore(),
		Organizations: licensing.OrganizationsFunc(func(context.Context, string) (licensing.Organization, error) {
			return licensing.Organization{}, licensing.ErrOrgNotFound
		}),
		Pepper: bytes.Repeat([]byte{3}, 32), Signing: signing, Policy: licensing.Policy{Issuer: "licensing.test"},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	return func(in licensing.ValidateInput) bool {
		in.LicenseKey = "0" // not a key: refused after the input checks
		_, err := svc.ValidateKey(context.Background(), in)
		if err == nil {
			t.Fatal("an invalid key was accepted")
		}
		return licensing.ErrorCode(err) == licensing.CodeInvalid
	}
}

// The server refuses exactly what wire's checks refuse: the client, which
// applies them before sending, never sends what the server refuses, and
// never holds back what it accepts.
func TestInputRulesAreTheServers(t *testing.T) {
	refused := validator(t)
	values := []string{"", "a", "ok name", "http://storno-app:8000", "app.example.com", "storno-app:8000",
		"javascript:alert(1)", " https://x.example ", "a\nb", "a\u202eb", "a\xff", "a b", "é", "x:0",
		"https://x.example/" + aKey, aKey[1:], "prod-" + aKey, strings.Repeat("m", 64), strings.Repeat("m", 65),
		strings.Repeat("n", 128), strings.Repeat("n", 129), strings.Repeat("ă", 255), strings.Repeat("ă", 256),
		"http://[::1]:8080", "http://[::1", "localhost", "LOCALHOST:80", "10.0.0.1", "user@x.example", "http://x.example:+80"}
	for _, v := range values {
		t.Run(fmt.Sprintf("%q", v), func(t *testing.T) {
			is := is.New(t)
			is.Equal(refused(licensing.ValidateInput{InstanceName: v}), wire.CheckInstanceName(v) != nil)
			is.Equal(refused(licensing.ValidateInput{InstanceURL: v}), wire.CheckInstanceURL(v) != nil)
			is.Equal(refused(licensing.ValidateInput{InstanceID: v}), wire.CheckInstanceID(v) != nil)
			is.Equal(refused(licensing.ValidateInput{Metrics: map[string]float64{v: 1}}), wire.CheckMetricName(v) != nil)
		})
	}
	for _, v := range []float64{0, 1, math.Copysign(0, -1), -1, math.NaN(), math.Inf(1)} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			is := is.New(t)
			is.Equal(refused(licensing.ValidateInput{Metrics: map[string]float64{"m": v}}), wire.CheckMetricValue(v) != nil)
		})
	}
	t.Run("count", func(t *testing.T) {
		is := is.New(t)
		m := map[string]float64{}
		for i := range wire.MaxMetrics {
			m[fmt.Sprint("m", i)] = 1
		}
		is.True(!refused(licensing.ValidateInput{Metrics: m})) // MaxMetrics is accepted
		m["one more"] = 1
		is.True(refused(licensing.ValidateInput{Metrics: m})) // one more is not
	})
}

func TestCheckErrorsNeverHoldTheValue(t *testing.T) {
	is := is.New(t)
	for _, err := range []error{wire.CheckInstanceName(aKey), wire.CheckInstanceURL("x " + aKey), wire.CheckMetricName(aKey + aKey)} {
		is.True(errors.Is(err, wire.ErrHoldsKey) || errors.Is(err, wire.ErrInvalid))
		is.True(!strings.Contains(err.Error(), aKey[:16]))
	}
}

func TestHoldsKey(t *testing.T) {
	key := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"63 hex digits", key[:63], false},
		{"64", key, true},
		{"upper case inside words", "x" + strings.ToUpper(key) + "y", true},
		{"63 and a fullwidth one", key[:63] + "ｆ", true},
		{"a combining mark between digits", key[:32] + "\u0301" + key[32:], true},
		{"a zero-width space between digits", key[:32] + "\u200b" + key[32:], true},
		{"a hyphen between digits", key[:32] + "-" + key[32:], false},
		{"two UUIDs", "01234567-89ab-cdef-0123-456789abcdef-01234567-89ab-cdef-0123-456789abcdef", false},
		{"percent-encoded", strings.ReplaceAll(key, "a", "%61"), true},
		{"percent-encoded twice", strings.ReplaceAll(key, "a", "%2561"), true},
		{"percent-encoded three times", strings.ReplaceAll(key, "a", "%252561"), false},
		{"a stray percent", "%" + key[:63], false},
		{"a stray percent before a key", "%zz" + key, true},
		{"invalid UTF-8 between digits", key[:32] + "\xff" + key[32:], false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			is.Equal(wire.HoldsKey(tc.s), tc.want)
		})
	}
}
