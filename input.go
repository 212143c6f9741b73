package licensing

import (
	"fmt"

	"github.com/licensekit/licensing/internal/wire"
)

// The input rules, the same on every route and in the client, are written
// once in internal/wire: strings are valid UTF-8; names (instance names,
// metric names) hold no control or format characters (Unicode Cc and Cf,
// bidi overrides among them) and no license key; numbers are finite and not
// negative; every field has a bound (docs/API.md lists them). This file
// turns their verdicts into the answers' texts.

func checkValidateInput(in ValidateInput) error {
	if err := checkInstanceName(in.InstanceName); err != nil {
		return err
	}
	switch wire.CheckInstanceURL(in.InstanceURL) {
	case nil:
	case wire.ErrHoldsKey:
		return keyInField("instanceUrl")
	default:
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("instanceUrl must be an http or https URL, or a host name with an optional port and path, of at most %d characters", wire.MaxInstanceURLLength)}
	}
	if wire.CheckInstanceID(in.InstanceID) != nil {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("instanceId must be at most %d printable ASCII characters without spaces, other than . and ..", wire.MaxInstanceIDLength)}
	}
	if len(in.Metrics) > wire.MaxMetrics {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("metrics must have at most %d entries", wire.MaxMetrics)}
	}
	for name, v := range in.Metrics {
		switch wire.CheckMetricName(name) {
		case nil:
		case wire.ErrHoldsKey:
			return keyInField("metric names")
		default:
			return &Error{Code: CodeInvalid, Message: fmt.Sprintf("metric names must be 1 to %d characters without control or format characters", wire.MaxMetricNameLength)}
		}
		if wire.CheckMetricValue(v) != nil {
			return errMetricValue
		}
	}
	return nil
}

var errMetricValue = &Error{Code: CodeInvalid, Message: "metrics must be finite numbers, not negative"}

// checkInstanceName applies the instance name rule (create and validate).
func checkInstanceName(s string) error {
	switch wire.CheckInstanceName(s) {
	case nil:
		return nil
	case wire.ErrHoldsKey:
		return keyInField("instanceName")
	default:
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("instanceName must be valid text of at most %d characters without control or format characters", wire.MaxInstanceNameLength)}
	}
}

// keyInField is the refusal of a field that holds a license key; it never
// repeats the value.
func keyInField(field string) error {
	return &Error{Code: CodeInvalid, Message: field + " must not hold a license key (64 hex characters)"}
}
