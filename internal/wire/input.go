package wire

import (
	"errors"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of what an instance sends: the fields of a ValidateRequest and the
// org parameter of the revocations route. The server refuses anything
// beyond them with a 400; the client does not send it.
const (
	MaxInstanceNameLength = 255  // characters
	MaxInstanceURLLength  = 2048 // bytes
	MaxInstanceIDLength   = 128  // bytes, printable ASCII without spaces
	MaxMetrics            = 32   // entries of ValidateRequest.Metrics
	MaxMetricNameLength   = 64   // characters
	MaxOrgIDLength        = 255  // characters
)

// Errors of the Check functions. Neither repeats the value, which may hold
// a license key.
var (
	// ErrInvalid: the value breaks the field's rule.
	ErrInvalid = errors.New("wire: invalid value")
	// ErrHoldsKey: the value holds a license key (see HoldsKey).
	ErrHoldsKey = errors.New("wire: value holds a license key")
)

// The input rules, the same on every route: strings are valid UTF-8; names
// (instance names, metric names) hold no control or format characters
// (Unicode Cc and Cf, bidi overrides among them) and no license key;
// numbers are finite and not negative; every field has a bound.

// IsText reports whether s is valid UTF-8 of at most max characters with no
// character of Unicode category Cc or Cf.
func IsText(s string, max int) bool {
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

// HoldsKey reports whether s holds a run of KeyLength or more hexadecimal
// digits (either case): a license key, or one of the seed system's, which
// carry no checksum. No name or URL an instance sends needs such a run, and
// one would otherwise be stored and listed in clear. The run is looked for
// as sent and after percent-decoding (twice, for a doubly encoded value);
// fullwidth digits and letters count as hex digits, and invisible marks
// between digits (combining marks, variation selectors, format characters,
// blank fillers) do not end a run. Any other character does: a key split on
// purpose ("-" every 4 digits, across fields) is not recognized. A run
// labelled "sha256:" or "sha256=" is a digest and allowed; any other
// SHA-256 in hex cannot be told from a key of the seed system's and is
// refused with them.
func HoldsKey(s string) bool {
	for range 3 {
		if hexRun(s) {
			return true
		}
		d := percentDecoded(s)
		if d == "" || d == s {
			return false
		}
		s = d
	}
	return false
}

// hexRun reports whether s holds KeyLength hex digits in a row (see
// HoldsKey). A run right after "sha256:" or "sha256=" is a digest by the
// usual convention (an image digest, a checksum), not a key.
func hexRun(s string) bool {
	run := 0
	digest := false // the current run follows a "sha256:" label
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' {
				if run == 0 {
					digest = i >= 7 && strings.EqualFold(s[i-7:i-1], "sha256") && (s[i-1] == ':' || s[i-1] == '=')
				}
				if run++; run >= KeyLength && !digest {
					return true
				}
			} else {
				run = 0
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case '０' <= r && r <= '９', 'Ａ' <= r && r <= 'Ｆ', 'ａ' <= r && r <= 'ｆ':
			if run++; run >= KeyLength {
				return true
			}
		case invisible(r):
		default:
			run = 0
		}
	}
	return false
}

// invisible reports whether r shows nothing between two digits.
func invisible(r rune) bool {
	switch r {
	case 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Variation_Selector)
}

// CheckInstanceName returns nil for an instance name of at most
// MaxInstanceNameLength characters that IsText accepts and that holds no
// key ("" included), ErrHoldsKey for one that holds a key, else ErrInvalid.
func CheckInstanceName(s string) error {
	if !IsText(s, MaxInstanceNameLength) {
		return ErrInvalid
	}
	if HoldsKey(s) {
		return ErrHoldsKey
	}
	return nil
}

// CheckInstanceID returns nil for "" (the server makes none up) or an id of
// 1 to MaxInstanceIDLength printable ASCII characters without spaces, else
// ErrInvalid. "." and ".." are refused: the owner frees an instance's seat
// at /keys/{id}/instances/{instance}, and clients resolve those segments
// (DELETE /keys/{id}/instances/.. would revoke the key).
func CheckInstanceID(s string) error {
	if s == "." || s == ".." || len(s) > MaxInstanceIDLength || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return ErrInvalid
	}
	return nil
}

// CheckMetricName returns nil for a metric name of 1 to MaxMetricNameLength
// characters that IsText accepts and that holds no key, ErrHoldsKey for
// one that holds a key, else ErrInvalid.
func CheckMetricName(name string) error {
	if name == "" || !IsText(name, MaxMetricNameLength) {
		return ErrInvalid
	}
	if HoldsKey(name) {
		return ErrHoldsKey
	}
	return nil
}

// CheckMetricValue returns nil for a finite number that is not negative
// (-0 included), else ErrInvalid.
func CheckMetricValue(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return ErrInvalid
	}
	return nil
}

// CheckInstanceURL returns nil for "" (not reported), an absolute http or
// https URL with any host name (a single label such as a container's
// "storno-app", underscores, international names, user info), or a bare
// host with an optional port and path ("app.example.com",
// "app.example.com:8443/storno"), which the seed system's client sends
// verbatim. A bare host is an IP literal, "localhost" or a dotted name; a
// single word before a colon ("javascript:1") is a scheme, not a host.
// Surrounding white space is ignored. Any other scheme is refused, since an
// owner page may render the value as a link. A URL of more than
// MaxInstanceURLLength bytes, or that IsText refuses, is ErrInvalid; one
// that holds a key, as is or percent-encoded, is ErrHoldsKey.
func CheckInstanceURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxInstanceURLLength || !IsText(s, MaxInstanceURLLength) {
		return ErrInvalid
	}
	if HoldsKey(s) {
		return ErrHoldsKey
	}
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, " \\") {
		return ErrInvalid
	}
	if i := strings.Index(s, "://"); i >= 0 {
		scheme := strings.ToLower(s[:i])
		u, err := url.Parse(s)
		if err != nil || (scheme != "http" && scheme != "https") || u.Hostname() == "" || !validPort(u.Port()) {
			return ErrInvalid
		}
		return nil
	}
	host := s
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if _, err := url.Parse("http://" + s); err != nil || strings.Contains(host, "@") || !validHost(host) {
		return ErrInvalid
	}
	return nil
}

// percentDecoded decodes every well-formed %XX of s and leaves anything
// else as it is, so that a key hidden by percent-encoding (or next to a
// stray "%") is still seen. It returns "" when s holds no "%".
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
