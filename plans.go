package licensing

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// defaultLimits is the metric → plan feature map used when Policy.Limits is
// nil. A feature the plan does not define is no limit, except
// maxOrganizations, which is 1 unless the plan says otherwise, as on the
// seed system: self-hosted licenses cover one organization.
var defaultLimits = map[string]string{
	"companyCount":      "maxCompanies",
	"userCount":         "maxUsersPerOrg",
	"invoicesThisMonth": "maxInvoicesPerMonth",
	"orgCount":          "maxOrganizations",
}

// maxOrganizations is the feature that limits organizations per instance.
const maxOrganizations = "maxOrganizations"

// violations compares reported metrics with the plan's limits.
func violations(limits map[string]string, org Organization, metrics map[string]float64) []string {
	out := []string{}
	names := make([]string, 0, len(metrics))
	for name := range metrics {
		if _, ok := limits[name]; ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		feature := limits[name]
		limit, ok := featureNumber(org.Features[feature])
		if _, defined := org.Features[feature]; !defined && feature == maxOrganizations {
			limit, ok = 1, true
		}
		if !ok || limit == 0 {
			continue // not a limit, or unlimited
		}
		v := metrics[name]
		if v > limit && feature == maxOrganizations {
			out = append(out, fmt.Sprintf("Multiple organizations detected (%s). Self-hosted licenses allow %s.",
				formatNumber(v), formatNumber(limit)))
			continue
		}
		if v > limit {
			out = append(out, fmt.Sprintf("%s is %s, above the %s plan's limit of %s (%s).",
				name, formatNumber(v), org.Plan, formatNumber(limit), feature))
		}
	}
	return out
}

func featureEnabled(v any) bool {
	if b, ok := v.(bool); ok {
		return b
	}
	n, ok := featureNumber(v)
	return ok && n != 0
}

func featureNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint32:
		return float64(n), true
	case interface{ Float64() (float64, error) }: // json.Number
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func humanDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d == 24*time.Hour:
		return "one day"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}
