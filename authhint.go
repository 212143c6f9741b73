package licensing

import (
	"net/http"
	"strings"
)

// Hints of an owner route's 401 (the "hint" field of its body): each names
// one common mistake in the shape of the Authorization header. They hold no
// angle brackets or ampersands, which encoding/json would escape.
const (
	hintNoHeader     = "The request has no Authorization header; send Authorization: Bearer, a space, then the token."
	hintTwoHeaders   = "The request has more than one Authorization header; send exactly one."
	hintEmpty        = "The Authorization header is empty; if it was built from a variable such as $TOKEN, that variable is empty."
	hintNoScheme     = "The Authorization header has no scheme; write Bearer, a space, then the token."
	hintOtherScheme  = "The Authorization header's scheme is not Bearer; send Authorization: Bearer, a space, then the token."
	hintNoToken      = "The Authorization header says Bearer but holds no token; if it was built from a variable such as $TOKEN, that variable is empty."
	hintPrefix       = `The token still has the "owner token:" prefix pasted in; send only the token that follows it.`
	hintTwoSchemes   = "The Authorization header says Bearer twice; send Bearer once, then the token."
	hintPlaceholder  = "The token looks like a placeholder (a word in angle brackets, a $VARIABLE the shell did not expand, or an ellipsis); send the real token."
	hintQuoted       = "The token is in quotes; send it without them."
	hintTooLong      = "The token is longer than 4096 characters; copy only the token."
	hintNotPrintable = "The token has spaces or characters other than printable ASCII; copy only the token, on one line."
	hintNotAccepted  = "The Authorization header is well formed, but its token is not accepted; check that it is a current token."
)

// authHint says what is wrong with the shape of an owner request's
// credential, for the body of its 401. It reads only the request's
// Authorization headers, never whether a token is known: every well-formed
// token gets the same hint, and no hint repeats any of the header.
func authHint(r *http.Request) string {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return hintNoHeader
	case len(values) > 1:
		return hintTwoHeaders
	}
	v := strings.TrimSpace(values[0])
	if v == "" {
		return hintEmpty
	}
	if hasOwnerTokenPrefix(v) {
		return hintPrefix
	}
	scheme, token, spaced := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		switch {
		case spaced:
			return hintOtherScheme
		case isPlaceholder(v):
			return hintPlaceholder
		}
		return hintNoScheme
	}
	token = strings.TrimSpace(token)
	first, _, _ := strings.Cut(token, " ")
	switch {
	case token == "":
		return hintNoToken
	case hasOwnerTokenPrefix(token):
		return hintPrefix
	case strings.EqualFold(first, "Bearer"):
		return hintTwoSchemes
	case isPlaceholder(token):
		return hintPlaceholder
	case len(token) >= 2 && (token[0] == '"' || token[0] == '\'') && token[len(token)-1] == token[0]:
		return hintQuoted
	case len(token) > maxTokenLength:
		return hintTooLong
	case strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		return hintNotPrintable
	}
	return hintNotAccepted
}

// hasOwnerTokenPrefix reports whether s starts with the reference server's
// "owner token:" label, which is printed before the token.
func hasOwnerTokenPrefix(s string) bool {
	return len(s) >= len("owner token") && strings.EqualFold(s[:len("owner token")], "owner token")
}

// placeholders are tokens that documentation and scripts use in place of a
// real one.
var placeholders = map[string]bool{"token": true, "your-token": true, "your_token": true, "yourtoken": true,
	"owner-token": true, "owner_token": true, "xxx": true, "changeme": true, "null": true, "undefined": true}

// isPlaceholder reports whether token looks like a placeholder rather than
// a credential: <token>, $TOKEN or ${TOKEN}, %TOKEN%, {{token}}, anything
// with "...", or one of the usual words.
func isPlaceholder(token string) bool {
	last := token[len(token)-1]
	return token[0] == '<' && last == '>' || token[0] == '$' ||
		token[0] == '%' && last == '%' && len(token) > 1 || strings.HasPrefix(token, "{{") ||
		strings.Contains(token, "...") || strings.Contains(token, "…") ||
		placeholders[strings.ToLower(token)]
}
