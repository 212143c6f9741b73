package licensing

import (
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/licensekit/licensing/internal/wire"
)

// TestInstanceIdentity: an instance is counted under its instanceId, else
// its instanceUrl normalized, so that the spellings of one site are one
// instance, and the id is never longer than maxInstanceIDLength.
func TestInstanceIdentity(t *testing.T) {
	tests := []struct{ id, url, want string }{
		{"inst-a", "https://a.example", "inst-a"},
		{strings.Repeat("ab", 32), "", "sha256:271a413bd339c5709fdceaec41f14f11e9fbfb5042d72d331c65f32b284cd09a"}, // a key sent as instanceId is not kept
		{"", "", ""},
		{"", "https://Storno.Example.com/", "https://storno.example.com"},
		{"", "HTTPS://storno.example.com:443", "https://storno.example.com"},
		{"", "http://storno.example.com:80/", "http://storno.example.com"},
		{"", "http://storno.example.com:8080/", "http://storno.example.com:8080"},
		{"", "https://storno.example.com:80", "https://storno.example.com:80"},
		{"", "storno.example.com", "https://storno.example.com"},
		{"", "storno.example.com:8443/app/", "https://storno.example.com:8443/app"},
		{"", "https://user:pw@storno.example.com/app//", "https://storno.example.com/app"},
		{"", "https://storno.example.com/App?x=1#top", "https://storno.example.com/App?x=1"},
		{"", "https://[2001:DB8::1]:443/", "https://[2001:db8::1]"},
		{"", "https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"},
		{"", "https://storno.example.com/facturi/ș", "https://storno.example.com/facturi/ș"}, // the path as sent, not re-escaped
		{"", "  https://a.example/ ", "https://a.example"},
		// one host and port, however spelled, is one instance
		{"", "https://a.example:0443/", "https://a.example"},
		{"", "https://a.example:08080", "https://a.example:8080"},
		{"", "a.example:00443", "https://a.example"},
		{"", "https://a.example./app", "https://a.example/app"},
		{"", "https://A.Example.:8443", "https://a.example:8443"},
		{"", "https://[2001:0DB8:0:0::1]", "https://[2001:db8::1]"},
		{"", "https://[::ffff:192.0.2.1]:443", "https://192.0.2.1"},
		{"", "https://[fe80::1%25eth0]:8443/", "https://[fe80::1%25eth0]:8443"},
	}
	for _, tc := range tests {
		t.Run(tc.id+" "+tc.url, func(t *testing.T) {
			is := is.New(t)
			is.Equal(instanceIdentity(tc.id, tc.url), tc.want)
		})
	}
	is := is.New(t)
	long := "storno.example.com/" + strings.Repeat("ș", (wire.MaxInstanceURLLength-19)/2)
	is.NoErr(wire.CheckInstanceURL(long)) // the longest URL an instance may send
	is.True(len(instanceIdentity("", long)) <= maxInstanceIDLength)
	// a host whose lower case takes more bytes (U+023A is 2 bytes, its
	// lower case 3): still within the bound, so its seat can be released
	grows := "https://" + strings.Repeat("\u023a", (wire.MaxInstanceURLLength-len("https://.example"))/2) + ".example"
	is.NoErr(wire.CheckInstanceURL(grows))
	is.True(len(instanceIdentity("", grows)) <= maxInstanceIDLength)
	is.Equal(instanceIdentity("", grows), instanceIdentity("", grows+"/")) // one spelling still
}

// FuzzNormalizeInstanceURL: the fast path returns only what the parse
// would, normalizing twice changes nothing, and a URL an instance may send
// gives an id within maxInstanceIDLength.
func FuzzNormalizeInstanceURL(f *testing.F) {
	for _, s := range []string{"https://a.example", "https://a.example/", "http://A.example:80", "https://a.example:443/x",
		"https://a.example:8443/app?x=1", "a.example", "https://a.example/x?", "https://a.example#f", "https://[::1]:8443/",
		"https://a.example:", "https://user@a.example", "https://a.example/ x", "http://a:b:c", "https://a.example:80",
		"https://\u023a.example", "https://a.example.:0443", "https://[::ffff:192.0.2.1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := normalizeInstanceURL(s)
		if isNormalURL(s) && parseNormalURL(s) != s {
			t.Fatalf("fast path kept %q, the parse gives %q", s, parseNormalURL(s))
		}
		if wire.CheckInstanceURL(s) != nil {
			return // refused before it is counted
		}
		if again := normalizeInstanceURL(n); again != n {
			t.Fatalf("%q normalizes to %q, then to %q", s, n, again)
		}
		if len(n) > maxInstanceIDLength {
			t.Fatalf("%q gives an id of %d bytes", s, len(n))
		}
	})
}
