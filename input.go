package licensing

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input bounds.
const (
	maxInstanceNameLength = 255
	maxInstanceURLLength  = 2048
	maxInstanceIDLength   = 128
	maxMetrics            = 32
	maxMetricNameLength   = 64
)

func checkValidateInput(in ValidateInput) error {
	if err := checkText("instanceName", in.InstanceName, maxInstanceNameLength); err != nil {
		return err
	}
	if in.InstanceURL != "" {
		bad := &Error{Code: CodeInvalid, Message: "instanceUrl must be an absolute http or https URL of at most 2048 characters"}
		if len(in.InstanceURL) > maxInstanceURLLength || !utf8.ValidString(in.InstanceURL) {
			return bad
		}
		u, err := url.Parse(in.InstanceURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad
		}
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
		if name == "" || utf8.RuneCountInString(name) > maxMetricNameLength || !utf8.ValidString(name) ||
			strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return &Error{Code: CodeInvalid, Message: fmt.Sprintf("metric names must be 1 to %d characters without control characters", maxMetricNameLength)}
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return &Error{Code: CodeInvalid, Message: "metrics must be finite numbers"}
		}
	}
	return nil
}

// checkText bounds a free-text field: valid UTF-8, at most max characters,
// no control characters.
func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("%s must be valid text of at most %d characters without control characters", field, max)}
	}
	return nil
}
