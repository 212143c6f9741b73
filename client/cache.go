package client

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/licensekit/licensing/internal/wire"
)

// signedAnswer is an answer as the server signed it, kept in the cache.
// Date is the signed date (wire.SignedDate), not a proxy's Date header.
type signedAnswer struct {
	Status    int    `json:"status"`
	Date      string `json:"date"`
	Signature string `json:"signature"`
	Body      []byte `json:"body"`
	// answeredBy is the method and URL of the request that got this
	// answer when a redirect led there (for StatusError); never cached.
	answeredBy *http.Request
}

// cacheState is the cache file. Only the signed answers in it are trusted;
// the rest is advisory, and editing it can only shorten a license (see
// clock).
type cacheState struct {
	Version    int    `json:"version"`
	InstanceID string `json:"instanceId,omitempty"`
	// LatestSeen is the latest time this client has seen, on its corrected
	// clock (see clock).
	LatestSeen time.Time `json:"latestSeen"`
	// ClockSkew is the server's signed date minus the local clock when the
	// last trusted answer arrived.
	ClockSkew   time.Duration `json:"clockSkew,omitempty"`
	Answer      *signedAnswer `json:"answer,omitempty"`
	Revocations *signedAnswer `json:"revocations,omitempty"`
}

// clock is the local time corrected for a local clock found behind the
// server's: now + ClockSkew when the skew is positive, else now. Comparing
// it, not now, with the server's signed dates lets a clock that is hours
// behind keep its license offline without a rollback alarm. A clock ahead
// of the server is not moved back, and an edited skew cannot move it back
// either: the grace period is never longer than the local clock gives, and
// a larger skew only brings expiry closer.
func (s cacheState) clock(now time.Time) time.Time {
	return now.Add(max(0, s.ClockSkew))
}

// latestSeen is the latest time this client has seen: its own record, and
// the signed dates it holds (which an edit cannot lower).
func (s cacheState) latestSeen() time.Time {
	t := s.LatestSeen
	for _, a := range []*signedAnswer{s.Answer, s.Revocations} {
		if a == nil {
			continue
		}
		if d, err := http.ParseTime(a.Date); err == nil && d.After(t) {
			t = d
		}
	}
	return t
}

// rolledBack reports whether the corrected clock at now is more than
// tolerance earlier than the latest time seen.
func (s cacheState) rolledBack(now time.Time, tolerance time.Duration) error {
	latest := s.latestSeen()
	if latest.IsZero() || !s.clock(now).Before(latest.Add(-tolerance)) {
		return nil
	}
	return fmt.Errorf("%w (latest seen %s)", ErrClockRollback, latest.UTC().Format(time.RFC3339))
}

// trusted records a trusted answer signed at date and received at now
// (local clock): the skew is measured again, and the latest time seen
// starts again from the server's word.
func (s *cacheState) trusted(date, now time.Time) {
	s.ClockSkew = date.Sub(now)
	s.LatestSeen = date.UTC()
	if t := s.clock(now); t.After(s.LatestSeen) {
		s.LatestSeen = t.UTC()
	}
}

func (c *Client) instanceID(st *cacheState) string {
	if c.cfg.InstanceID != "" {
		return c.cfg.InstanceID
	}
	if st.InstanceID == "" && c.cfg.CachePath != "" {
		var b [16]byte
		rand.Read(b[:])
		st.InstanceID = hex.EncodeToString(b[:])
	}
	return st.InstanceID
}

// loadCache reads the cache file. A missing file is an empty state; a file
// whose signed parts do not verify is ignored and reported; an instance id
// that the server would refuse is dropped (a new one is made).
func (c *Client) loadCache() (cacheState, error) {
	if c.cfg.CachePath == "" {
		return cacheState{}, nil
	}
	b, err := os.ReadFile(c.cfg.CachePath)
	if errors.Is(err, os.ErrNotExist) {
		return cacheState{}, nil
	}
	if err != nil {
		return cacheState{}, fmt.Errorf("%w: %v", ErrCacheInvalid, err)
	}
	var st cacheState
	if len(b) > 4*maxAnswerBytes || json.Unmarshal(b, &st) != nil || st.Version != 1 {
		return cacheState{}, ErrCacheInvalid
	}
	if wire.CheckInstanceID(st.InstanceID) != nil {
		// sent at every check, and the server would refuse the whole
		// check for it: a new one is made (the id is not signed: nothing
		// else is lost)
		st.InstanceID = ""
	}
	kept := cacheState{InstanceID: st.InstanceID, LatestSeen: st.LatestSeen, ClockSkew: st.ClockSkew}
	if st.Answer != nil {
		if _, err := c.answerLicense(*st.Answer); err != nil {
			return kept, ErrCacheInvalid
		}
	}
	if st.Revocations != nil && c.token {
		if _, err := c.revokedIDs(*st.Revocations, c.claims.Subject); err != nil {
			return kept, ErrCacheInvalid
		}
	}
	return st, nil
}

// saveCache writes the cache file atomically with mode 0600.
func (c *Client) saveCache(st cacheState) error {
	if c.cfg.CachePath == "" {
		return nil
	}
	st.Version = 1
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCacheWrite, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.cfg.CachePath), ".license-*.tmp")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCacheWrite, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o600)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.cfg.CachePath)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCacheWrite, err)
	}
	return nil
}
