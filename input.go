package licensing

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input bounds. docs/API.md lists them.
const (
	maxInstanceNameLength = 255
	maxInstanceURLLength  = 2048
	maxInstanceIDLength   = 128
	maxMetrics            = 32
	maxMetricNameLength   = 64
	maxOrgIDLength        = 255 // the org parameter of the revocations route
)

// The input rules, the same on every route: strings are valid UTF-8; names
// (instance names, metric names) hold no control or format characters
// (Unicode Cc and Cf, bidi overrides among them); numbers are finite and not
// negative; every field has a bound.

func checkValidateInput(in ValidateInput) error {
	if err := checkText("instanceName", in.InstanceName, maxInstanceNameLength); err != nil {
		return err
	}
	if err := checkInstanceURL(in.InstanceURL); err != nil {
		return err
	}
	if in.InstanceID != "" {
		if len(in.InstanceID) > maxInstanceIDLength || strings.IndexFunc(in.InstanceID, func(r rune) bool {
			return r <= ' ' || r > '~'
		}) >= 0 {
			return &Error{Code: CodeInvalid, Message: "instanceId must be at most 128 printable ASCII characters without spaces"}
		}
	}
	if len(in.Metrics) > maxMetrics {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("metrics must have at most %d entries", maxMetrics)}
	}
	for name, v := range in.Metrics {
		if name == "" || !isName(name, maxMetricNameLength) {
			return &Error{Code: CodeInvalid, Message: fmt.Sprintf("metric names must be 1 to %d characters without control or format characters", maxMetricNameLength)}
		}
		if holdsKey(name) {
			return keyInField("metric names")
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return errMetricValue
		}
	}
	return nil
}

var errMetricValue = &Error{Code: CodeInvalid, Message: "metrics must be finite numbers, not negative"}

// checkText bounds a name: valid UTF-8, at most max characters, no control
// or format characters.
func checkText(field, s string, max int) error {
	if !isName(s, max) {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("%s must be valid text of at most %d characters without control or format characters", field, max)}
	}
	if holdsKey(s) {
		return keyInField(field)
	}
	return nil
}

// holdsKey reports whether s holds a run of KeyLength or more hex digits: a
// license key (or one of the seed system's, which carry no checksum) that
// would otherwise be stored, and listed, in clear. No name or URL an
// instance sends needs such a run.
func holdsKey(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' {
			if run++; run >= KeyLength {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// percentDecoded decodes every well-formed %XX of s and leaves anything
// else as it is, so a key hidden by percent-encoding (or next to a stray
// "%") is still seen.
func percentDecoded(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return ""
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(v))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

// keyInField is the refusal of a field that holds a license key; it never
// repeats the value.
func keyInField(field string) error {
	return &Error{Code: CodeInvalid, Message: field + " must not hold a license key (64 hex characters)"}
}

// isName reports whether s is valid UTF-8 of at most max characters with no
// character of Unicode category Cc or Cf.
func isName(s string, max int) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := 0
	for _, r := range s {
		if n++; n > max || unicode.In(r, unicode.Cc, unicode.Cf) {
			return false
		}
	}
	return true
}

// checkInstanceURL accepts "" (not reported), an absolute http or https URL
// with any host name (a single label such as a container's "storno-app",
// underscores, international names, user info), or a bare host with an
// optional port and path ("app.example.com", "app.example.com:8443/storno"),
// as the seed system's client sends its FRONTEND_URL verbatim. Surrounding
// white space is ignored (the value is stored as sent). Any other scheme is
// refused, since an owner page may render the value as a link; so is a bare
// single word before a colon ("javascript:1"), which is a scheme, not a host.
func checkInstanceURL(s string) error {
	if s == "" {
		return nil
	}
	bad := &Error{Code: CodeInvalid, Message: "instanceUrl must be an http or https URL, or a host name with an optional port and path, of at most 2048 characters"}
	if len(s) > maxInstanceURLLength || !isName(s, maxInstanceURLLength) {
		return bad
	}
	if holdsKey(s) || holdsKey(percentDecoded(s)) {
		return keyInField("instanceUrl")
	}
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, " \\") {
		return bad
	}
	if i := strings.Index(s, "://"); i >= 0 {
		scheme := strings.ToLower(s[:i])
		u, err := url.Parse(s)
		if err != nil || (scheme != "http" && scheme != "https") || u.Hostname() == "" || !validPort(u.Port()) {
			return bad
		}
		return nil
	}
	host := s
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if _, err := url.Parse("http://" + s); err != nil || strings.Contains(host, "@") || !validHost(host) {
		return bad
	}
	return nil
}

// validPort accepts "" or a port number from 1 to 65535.
func validPort(port string) bool {
	if port == "" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && port[0] != '+'
}

// validHost accepts a bare host[:port], where host is an IP literal,
// "localhost", or a dotted name whose labels hold letters (any script),
// digits, hyphens and underscores, and port is 1 to 65535. A bare word
// before a colon ("javascript:1") is not a host.
func validHost(hostport string) bool {
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") || strings.Count(hostport, ":") > 0 {
		return false
	}
	if !validPort(port) {
		return false
	}
	if net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") {
		return true
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if len(labels) < 2 || len(host) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(unicode.IsLetter(c) || unicode.IsDigit(c) || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
