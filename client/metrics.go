package client

import (
	"errors"
	"maps"
	"slices"
	"strconv"

	"github.com/licensekit/licensing/internal/wire"
)

// sendableMetrics splits m, what Config.Metrics returned, into the metrics
// the server accepts and a description of each one left out, sorted by
// name: one the server would refuse (an invalid or over-long name, a name
// holding a key, a negative or non-finite value) and, beyond the first
// wire.MaxMetrics of the rest by sorted name, the others. The server
// refuses the whole validation for any of them, so sending them would cost
// the license.
func sendableMetrics(m map[string]float64) (map[string]float64, []string) {
	if len(m) == 0 {
		return nil, nil
	}
	sent := make(map[string]float64, min(len(m), wire.MaxMetrics))
	var dropped []string
	for _, name := range slices.Sorted(maps.Keys(m)) {
		v := m[name]
		var why string
		switch err := wire.CheckMetricName(name); {
		case errors.Is(err, wire.ErrHoldsKey):
			why = "the name holds a license key"
		case err != nil:
			why = "the name is not 1 to " + strconv.Itoa(wire.MaxMetricNameLength) + " characters without control or format characters"
		case wire.CheckMetricValue(v) != nil:
			why = "the value " + strconv.FormatFloat(v, 'g', -1, 64) + " is negative or not finite"
		case len(sent) == wire.MaxMetrics:
			why = "more than " + strconv.Itoa(wire.MaxMetrics) + " metrics"
		default:
			sent[name] = v
			continue
		}
		dropped = append(dropped, metricLabel(name)+": "+why)
	}
	return sent, dropped
}

// metricLabel is how a dropped metric is named in a report: quoted (so
// control characters and invalid UTF-8 show as escapes), cut after
// wire.MaxMetricNameLength characters, and never a name that holds a key.
func metricLabel(name string) string {
	if wire.HoldsKey(name) {
		return "(a name holding a license key)"
	}
	cut, n := name, 0
	for i := range name {
		if n == wire.MaxMetricNameLength {
			cut = name[:i]
			break
		}
		n++
	}
	label := strconv.Quote(cut)
	if len(cut) < len(name) {
		label += "..."
	}
	return label
}
