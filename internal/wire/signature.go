package wire

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// SignatureVersion is the first line of every SignedString.
const SignatureVersion = "licensing-signature-v1"

// SignatureAlg is the alg parameter of SignatureHeader: answers are signed
// with Ed25519.
const SignatureAlg = "ed25519"

// MaxSignatureHeaderLength bounds what ParseSignature reads.
const MaxSignatureHeaderLength = 1024

// ErrSignatureHeader is returned by ParseSignature for a header that is not
// exactly kid, alg="ed25519" and a 64-byte sig.
var ErrSignatureHeader = errors.New("wire: malformed " + SignatureHeader + " header")

// SignedString is what a SignatureHeader covers: a version line, the HTTP
// status, the signing key's id, the signed date (the SignedDateHeader
// text, see SignedDate), and the exact body bytes, each of the first four
// followed by a newline:
//
//	"licensing-signature-v1\n" + status + "\n" + kid + "\n" + date + "\n" + body
func SignedString(status int, kid, date string, body []byte) []byte {
	s := make([]byte, 0, 64+len(kid)+len(date)+len(body))
	s = append(s, SignatureVersion+"\n"...)
	s = strconv.AppendInt(s, int64(status), 10)
	s = append(s, '\n')
	s = append(s, kid...)
	s = append(s, '\n')
	s = append(s, date...)
	s = append(s, '\n')
	return append(s, body...)
}

// SignedDate returns the date text that the signature of an answer with
// header h covers: the SignedDateHeader value, or, when there is none (a
// server that predates it), the Date header's. It neither parses nor
// checks the text: a date that is not the signed one fails verification.
func SignedDate(h http.Header) string {
	if d := h.Get(SignedDateHeader); d != "" {
		return d
	}
	return h.Get("Date")
}

// FormatSignature returns the SignatureHeader value for an Ed25519
// signature sig made by key kid:
//
//	kid="<kid>", alg="ed25519", sig="<standard base64 of sig, padded>"
//
// A '"' or '\' in kid is escaped as an HTTP quoted-pair, so that
// ParseSignature gives back any non-empty kid of printable ASCII (the
// server's key ids, JWK thumbprints, are base64url) and any 64-byte sig.
func FormatSignature(kid string, sig []byte) string {
	var b strings.Builder
	b.Grow(len(kid) + base64.StdEncoding.EncodedLen(len(sig)) + 32)
	b.WriteString(`kid="`)
	for i := 0; i < len(kid); i++ {
		if kid[i] == '"' || kid[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(kid[i])
	}
	b.WriteString(`", alg="` + SignatureAlg + `", sig="`)
	b.WriteString(base64.StdEncoding.EncodeToString(sig))
	b.WriteString(`"`)
	return b.String()
}

// ParseSignature reads a SignatureHeader value. It accepts exactly the
// three parameters kid, alg and sig, each once, in any order, separated by
// commas with optional spaces or tabs, each value an HTTP quoted-string
// (RFC 9110). alg must be "ed25519", kid non-empty and sig the canonical
// padded standard base64 of 64 bytes. Anything else, and any header longer
// than MaxSignatureHeaderLength or holding a control character, is
// ErrSignatureHeader.
func ParseSignature(h string) (kid string, sig []byte, err error) {
	if len(h) > MaxSignatureHeaderLength {
		return "", nil, ErrSignatureHeader
	}
	var alg, sigText string
	var seen [3]bool
	rest := h
	for first := true; ; first = false {
		rest = trimOWS(rest)
		if !first {
			if rest == "" {
				break
			}
			if rest[0] != ',' {
				return "", nil, ErrSignatureHeader
			}
			rest = trimOWS(rest[1:])
		}
		name, after, ok := strings.Cut(rest, "=")
		if !ok {
			return "", nil, ErrSignatureHeader
		}
		value, tail, ok := quotedString(after)
		if !ok {
			return "", nil, ErrSignatureHeader
		}
		rest = tail
		var i int
		switch name {
		case "kid":
			i, kid = 0, value
		case "alg":
			i, alg = 1, value
		case "sig":
			i, sigText = 2, value
		default:
			return "", nil, ErrSignatureHeader
		}
		if seen[i] {
			return "", nil, ErrSignatureHeader // a repeated parameter
		}
		seen[i] = true
	}
	if !seen[0] || !seen[1] || !seen[2] || kid == "" || alg != SignatureAlg {
		return "", nil, ErrSignatureHeader
	}
	sig, err = base64.StdEncoding.Strict().DecodeString(sigText)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return "", nil, ErrSignatureHeader
	}
	return kid, sig, nil
}

func trimOWS(s string) string { return strings.TrimLeft(s, " \t") }

// quotedString reads an RFC 9110 quoted-string at the start of s and
// returns its value and what follows it. Control characters (other than
// a tab) and bytes outside ASCII are refused.
func quotedString(s string) (value, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), s[i+1:], true
		case c == '\\':
			i++
			if i == len(s) || !textByte(s[i]) {
				return "", "", false
			}
			b.WriteByte(s[i])
		case textByte(c):
			b.WriteByte(c)
		default:
			return "", "", false
		}
	}
	return "", "", false // unterminated
}

// textByte reports whether c may appear in a quoted-string: a tab or a
// printable ASCII character.
func textByte(c byte) bool { return c == '\t' || (' ' <= c && c <= '~') }
