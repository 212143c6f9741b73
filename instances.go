package licensing

import (
	"net/url"
	"strings"
	"time"
)

// Instance is a self-hosted instance as a key remembers it (see
// Store.SeatInstance): one that validated the key within the instance
// lease (Config.InstanceLease) holds a seat on it.
type Instance struct {
	// ID identifies the instance: the instanceId it sends, else its
	// instanceUrl normalized (lower-case scheme and host, default port and
	// trailing slash dropped). At most 2,048 bytes.
	ID          string
	Name        string // the last instanceName it sent; "" when none
	URL         string // the last instanceUrl it sent, as sent; "" when none
	FirstSeenAt time.Time
	LastSeenAt  time.Time
	Metrics     map[string]float64 // the last metrics it sent; nil when none
}

// MaxInstancesLimit is the largest Key.MaxInstances, and the most instances
// a store keeps for a key without a limit.
const MaxInstancesLimit = 1000

// ErrSeatLimit is returned by Store.SeatInstance when a new instance finds
// every seat of its key taken. The Service answers the instance with an
// error of code CodeForbidden that wraps it and names the limit.
var ErrSeatLimit = &Error{Code: CodeForbidden, Message: "License key is already used by the maximum number of instances"}

// ErrInstanceNotFound is returned when a key has no instance of the id
// given (Store.ReleaseInstance, Service.ReleaseInstance).
var ErrInstanceNotFound = &Error{Code: CodeNotFound, Message: "Instance not found"}

// ErrInvalidMaxInstances is returned for a maxInstances outside
// 0..MaxInstancesLimit; nothing is stored then.
var ErrInvalidMaxInstances = &Error{Code: CodeInvalid, Message: "maxInstances must be an integer from 1 to 1000 (or null for the plan's limit)"}

// instanceIdentity returns the id that an instance's validation is counted
// under: its instanceId when it sent one, else its normalized instanceUrl,
// else "" (not counted).
func instanceIdentity(instanceID, instanceURL string) string {
	if instanceID != "" {
		return instanceID
	}
	if instanceURL == "" {
		return ""
	}
	return normalizeInstanceURL(instanceURL)
}

// normalizeInstanceURL lower-cases the scheme and host of raw, drops the
// scheme's default port and any trailing slash of the path. A bare host
// (the seed system's client sends its FRONTEND_URL as configured) is read
// as https. What does not parse is returned trimmed of trailing slashes,
// so that one spelling always counts as one instance.
func normalizeInstanceURL(raw string) string {
	s := raw
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return strings.TrimRight(raw, "/")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" || (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		u.Host = host
		if strings.Contains(host, ":") {
			u.Host = "[" + host + "]"
		}
	} else {
		u.Host = host + ":" + port
		if strings.Contains(host, ":") {
			u.Host = "[" + host + "]:" + port
		}
	}
	u.User = nil
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
