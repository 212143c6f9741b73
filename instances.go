package licensing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/licensekit/licensing/internal/wire"
)

// Instance is a self-hosted instance as a key remembers it (see
// Store.SeatInstance): one that validated the key within the instance
// lease (Config.InstanceLease) holds a seat on it.
type Instance struct {
	// ID identifies the instance: the instanceId it sends, else its
	// instanceUrl normalized (lower-case scheme and host, default port and
	// trailing slash dropped). At most 2,056 bytes: 2,048 of a URL and the
	// "https://" a bare host is read with.
	ID          string
	Name        string // the last instanceName it sent; "" when none
	URL         string // the last instanceUrl it sent, as sent; "" when none
	FirstSeenAt time.Time
	LastSeenAt  time.Time
	Metrics     map[string]float64 // the last metrics it sent; nil when none
}

// Merge returns in updated with a later sighting of the instance, as
// Store.SeatInstance applies one: the later of the two LastSeenAt, and
// seen's Name, URL and Metrics (a copy) where they are set. FirstSeenAt
// and ID stay in's.
func (in Instance) Merge(seen Instance) Instance {
	if seen.LastSeenAt.After(in.LastSeenAt) {
		in.LastSeenAt = seen.LastSeenAt
	}
	if seen.Name != "" {
		in.Name = seen.Name
	}
	if seen.URL != "" {
		in.URL = seen.URL
	}
	if seen.Metrics != nil {
		in.Metrics = maps.Clone(seen.Metrics)
	}
	return in
}

// MaxInstancesLimit is the largest Key.MaxInstances, and the most instances
// a store keeps for a key without a limit.
const MaxInstancesLimit = 1000

// ErrSeatLimit is returned by Store.SeatInstance when a new instance finds
// every seat of its key taken. The Service answers the instance with an
// error of code CodeForbidden that wraps it and names the limit.
var ErrSeatLimit = &Error{Code: CodeForbidden, Message: wire.SeatLimitMessage}

// ErrInstanceNotFound is returned when a key has no instance of the id
// given (Store.ReleaseInstance, Service.ReleaseInstance).
var ErrInstanceNotFound = &Error{Code: CodeNotFound, Message: "Instance not found"}

// ErrInvalidMaxInstances is returned for a maxInstances outside
// 0..MaxInstancesLimit; nothing is stored then.
var ErrInvalidMaxInstances = &Error{Code: CodeInvalid, Message: "maxInstances must be an integer from 1 to 1000 (or null for the plan's limit)"}

// instanceIdentity returns the id that an instance's validation is counted
// under: its instanceId when it sent one, else its normalized instanceUrl,
// else "" (not counted). An instanceId that holds a license key (64 hex
// characters: a misconfigured instance may send its key there) is counted
// under "sha256:" and the hex SHA-256 of it, so that no key is stored.
func instanceIdentity(instanceID, instanceURL string) string {
	if instanceID != "" {
		if wire.HoldsKey(instanceID) {
			sum := sha256.Sum256([]byte(instanceID))
			return "sha256:" + hex.EncodeToString(sum[:])
		}
		return instanceID
	}
	if instanceURL == "" {
		return ""
	}
	return normalizeInstanceURL(instanceURL)
}

// maxInstanceIDLength bounds Instance.ID: an instanceId has at most
// wire.MaxInstanceIDLength bytes, and a normalized instanceUrl at most
// wire.MaxInstanceURLLength plus the "https://" given to a bare host.
const maxInstanceIDLength = wire.MaxInstanceURLLength + len("https://")

// normalizeInstanceURL lower-cases the scheme and host of raw, drops user
// information, the scheme's default port, any fragment and the trailing
// slashes of the path, and writes the host and port one way (see
// canonicalHost; a port without leading zeros); the path and query stay as sent (not re-escaped), so
// the result is never longer than raw plus the "https://" that a bare host
// (the seed system's client sends its FRONTEND_URL as configured) is read
// with. What does not parse is returned trimmed of trailing slashes, so
// that one spelling always counts as one instance.
func normalizeInstanceURL(raw string) string {
	if isNormalURL(raw) {
		return raw // the usual case, on the validate route: no allocation
	}
	return parseNormalURL(raw)
}

// parseNormalURL is normalizeInstanceURL for any raw.
func parseNormalURL(raw string) string {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return strings.TrimRight(raw, "/")
	}
	scheme := strings.ToLower(u.Scheme)
	host := canonicalHost(u.Hostname())
	port := u.Port()
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10) // "0443" is 443
	}
	if port != "" && !(scheme == "https" && port == "443") && !(scheme == "http" && port == "80") {
		host += ":" + port
	}
	rest := s[strings.Index(s, "://")+3:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[i:]
	} else {
		rest = ""
	}
	rest, _, _ = strings.Cut(rest, "#")
	path, query, hasQuery := strings.Cut(rest, "?")
	out := scheme + "://" + host + strings.TrimRight(path, "/")
	if hasQuery && query != "" {
		out += "?" + query
	}
	return out
}

// canonicalHost returns the one spelling of host (a URL's Hostname): a
// name in lower case without the trailing dot of a fully qualified one, an
// IP address as netip writes it (an IPv4-mapped IPv6 one as IPv4), in
// brackets when IPv6 (with its zone, if any, escaped as %25).
func canonicalHost(host string) string {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if !a.Is6() {
			return a.String()
		}
		if z := a.Zone(); z != "" {
			return "[" + a.WithZone("").String() + "%25" + z + "]"
		}
		return "[" + a.String() + "]"
	}
	host = strings.Map(lowerNoLonger, host)
	if trimmed := strings.TrimRight(host, "."); trimmed != "" {
		host = trimmed // "a.example." is a.example
	}
	if strings.Contains(host, ":") { // not an address netip reads: kept as sent
		host = "[" + host + "]"
	}
	return host
}

// lowerNoLonger returns r in lower case, or r itself when its lower case
// takes more bytes in UTF-8 (U+023A, U+023E), so that a normalized URL is
// never longer than the URL sent.
func lowerNoLonger(r rune) rune {
	if l := unicode.ToLower(r); utf8.RuneLen(l) <= utf8.RuneLen(r) {
		return l
	}
	return r
}

// isNormalURL reports whether normalizeInstanceURL would return s as it
// is: http or https in lower case, a host of lower-case letters, digits,
// dots and hyphens with a port other than the scheme's default, and a path
// and query without a trailing slash, a fragment or white space.
func isNormalURL(s string) bool {
	var rest string
	switch {
	case strings.HasPrefix(s, "https://"):
		rest = s[len("https://"):]
	case strings.HasPrefix(s, "http://"):
		rest = s[len("http://"):]
	default:
		return false
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host, tail := rest[:end], rest[end:]
	if host == "" || strings.HasSuffix(host, ":") || strings.HasSuffix(host, ":443") || strings.HasSuffix(host, ":80") {
		return false // scheme's default port, or an empty one: normalized by the slow path (which checks the scheme)
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == ':') {
			return false
		}
	}
	if strings.Count(host, ":") > 1 {
		return false
	}
	name, port, _ := strings.Cut(host, ":")
	if strings.HasSuffix(name, ".") || strings.HasPrefix(port, "0") {
		return false // a fully qualified name's dot, a port's leading zero: dropped by the slow path
	}
	path, _, _ := strings.Cut(tail, "?")
	if strings.HasSuffix(path, "/") || strings.ContainsAny(tail, "# \t\r\n") || strings.HasSuffix(tail, "?") {
		return false
	}
	return true
}

// DefaultInstanceLease is Config.InstanceLease when it is not set.
const DefaultInstanceLease = 72 * time.Hour

// seatLimit is the number of instances that may hold a seat on k: its own
// MaxInstances, else the plan's numeric maxInstancesPerKey feature when
// above 0, else 0 (no limit).
func seatLimit(k *Key, org Organization) int {
	if k.MaxInstances > 0 {
		return k.MaxInstances
	}
	if n, ok := featureNumber(org.Features[maxInstancesFeature]); ok && n >= 1 {
		return int(min(n, MaxInstancesLimit))
	}
	return 0
}

// maxInstancesFeature is the plan feature that limits the instances of a
// key that has no MaxInstances of its own.
const maxInstancesFeature = "maxInstancesPerKey"

// seat records that instance id validated key k at now and returns how many
// instances hold a seat on k. A new instance beyond the key's limit gets an
// error of code CodeForbidden wrapping ErrSeatLimit, and
// EventSeatLimitReached is queued; a new instance that makes the key shared
// queues EventKeyShared.
func (s *Service) seat(ctx context.Context, k *Key, org Organization, in ValidateInput, id string, now time.Time) (int, error) {
	limit := seatLimit(k, org)
	inst := Instance{ID: id, Name: in.InstanceName, URL: in.InstanceURL, LastSeenAt: now, Metrics: in.Metrics}
	seated, added, err := s.cfg.Store.SeatInstance(ctx, k.ID, inst, limit, s.cfg.InstanceLease)
	switch {
	case errors.Is(err, ErrSeatLimit):
		s.emitLater(ctx, failed(OutcomeSeatLimit, k))
		s.emitLater(ctx, Event{Type: EventSeatLimitReached, Time: now, KeyID: k.ID, OrganizationID: k.OrganizationID,
			MaskedKey: k.MaskedKey, InstanceID: id, MaxInstances: limit})
		return 0, seatLimitError(limit)
	case errors.Is(err, ErrKeyNotFound): // removed since it was read
		s.emitLater(ctx, failed(OutcomeUnknown, nil))
		return 0, ErrInvalidLicense
	case err != nil:
		return 0, wrapErr("seat instance", err)
	}
	if added && seated > 1 {
		s.emitLater(ctx, Event{Type: EventKeyShared, Time: now, KeyID: k.ID, OrganizationID: k.OrganizationID,
			MaskedKey: k.MaskedKey, InstanceID: id, InstanceCount: seated})
	}
	return seated, nil
}

// seatLimitError is the answer to a new instance that finds every one of
// the limit's seats taken.
func seatLimitError(limit int) error {
	return &Error{Code: CodeForbidden, Err: ErrSeatLimit,
		Message: wire.SeatLimitMessage + " (" + strconv.Itoa(limit) + ")"}
}

// SetMaxInstances sets how many instances may hold a seat on key id of the
// actor's organization (0: none of its own, so the plan's
// maxInstancesPerKey feature applies, or no limit) and returns the key as
// ListKeys shows it. n outside 0..MaxInstancesLimit gives
// ErrInvalidMaxInstances. Lowering the limit frees no seat: instances that
// hold one keep it until their lease runs out or the owner releases them.
// The actor must be the owner (plan and active flag are not checked, as
// for RevokeKey). A revoked key gives ErrKeyRevoked; an id that is not a
// UUID, unknown, or of another organization ErrKeyNotFound.
func (s *Service) SetMaxInstances(ctx context.Context, a Actor, id string, n int) (Key, error) {
	if n < 0 || n > MaxInstancesLimit {
		return Key{}, ErrInvalidMaxInstances
	}
	k, err := s.ownedKey(ctx, a, id)
	if err != nil {
		return Key{}, err
	}
	if !k.Active {
		return Key{}, ErrKeyRevoked
	}
	k, err = s.cfg.Store.SetMaxInstances(ctx, k.ID, n)
	if err != nil {
		if e := storeSentinel(err, ErrKeyRevoked, ErrKeyNotFound); e != nil {
			return Key{}, e // a revocation that came in between
		}
		return Key{}, wrapErr("set max instances", err)
	}
	keys := []Key{k}
	s.rec.overlay(keys)
	return keys[0], nil
}

// Instances returns the instances that hold a seat on key id of the
// actor's organization (seen within Config.InstanceLease), most recently
// seen first. Revoked keys answer too (with the instances that used them
// last). The actor must be the owner; an id that is not a UUID, unknown,
// or of another organization gives ErrKeyNotFound.
func (s *Service) Instances(ctx context.Context, a Actor, id string) ([]Instance, error) {
	k, err := s.ownedKey(ctx, a, id)
	if err != nil {
		return nil, err
	}
	list, err := s.cfg.Store.Instances(ctx, k.ID, s.now(), s.cfg.InstanceLease)
	if err != nil {
		if errors.Is(err, ErrKeyNotFound) {
			return nil, ErrKeyNotFound
		}
		return nil, wrapErr("list instances", err)
	}
	return list, nil
}

// ReleaseInstance frees the seat that instance instanceID (an Instance.ID)
// holds on key id of the actor's organization, at once for every server
// on the store, and sends EventInstanceReleased. The instance takes a seat
// again, if one is free, when it next validates. The actor must be the
// owner; a key that is not the organization's gives ErrKeyNotFound, an
// instance the key does not have ErrInstanceNotFound.
func (s *Service) ReleaseInstance(ctx context.Context, a Actor, id, instanceID string) error {
	if instanceID == "" || len(instanceID) > maxInstanceIDLength {
		return ErrInstanceNotFound // no instance is counted under such an id
	}
	k, err := s.ownedKey(ctx, a, id)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.ReleaseInstance(ctx, k.ID, instanceID); err != nil {
		if e := storeSentinel(err, ErrInstanceNotFound, ErrKeyNotFound); e != nil {
			return e
		}
		return wrapErr("release instance", err)
	}
	s.emit(ctx, Event{Type: EventInstanceReleased, KeyID: k.ID, OrganizationID: k.OrganizationID,
		MaskedKey: k.MaskedKey, UserID: a.UserID, InstanceID: instanceID})
	return nil
}
