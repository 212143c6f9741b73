package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/licensekit/licensing"
)

var _ licensing.EventLog = (*Store)(nil)

// The event log is license_events: the columns an EventQuery selects on,
// and body, the whole event but its Seq (eventBody). Appends serialize on
// the one row of event_seq, whose counter gives the seqs: a transaction
// takes its seqs while holding the row's lock and releases it when it
// commits, so seq order is commit order.

// eventBody is an event as stored in license_events.body; its JSON names
// are the stored format.
type eventBody struct {
	ID             string     `json:"id"`
	Type           string     `json:"type"`
	Time           time.Time  `json:"time"`
	KeyID          string     `json:"keyId,omitempty"`
	OrganizationID string     `json:"organizationId,omitempty"`
	MaskedKey      string     `json:"maskedKey,omitempty"`
	UserID         string     `json:"userId,omitempty"`
	Outcome        string     `json:"outcome,omitempty"`
	InstanceCount  int        `json:"instanceCount,omitempty"`
	ExpiresAt      *time.Time `json:"expiresAt,omitempty"`
	RotatedTo      string     `json:"rotatedTo,omitempty"`
	InstanceID     string     `json:"instanceId,omitempty"`
	MaxInstances   int        `json:"maxInstances,omitempty"`
}

func toBody(e licensing.Event) eventBody {
	return eventBody{ID: e.ID, Type: string(e.Type), Time: e.Time, KeyID: e.KeyID, OrganizationID: e.OrganizationID,
		MaskedKey: e.MaskedKey, UserID: e.UserID, Outcome: string(e.Outcome), InstanceCount: e.InstanceCount,
		ExpiresAt: optTime(e.ExpiresAt), RotatedTo: e.RotatedTo, InstanceID: e.InstanceID, MaxInstances: e.MaxInstances}
}

func (b eventBody) event(seq uint64) licensing.Event {
	e := licensing.Event{ID: b.ID, Seq: seq, Type: licensing.EventType(b.Type), Time: b.Time.UTC(), KeyID: b.KeyID,
		OrganizationID: b.OrganizationID, MaskedKey: b.MaskedKey, UserID: b.UserID, Outcome: licensing.Outcome(b.Outcome),
		InstanceCount: b.InstanceCount, RotatedTo: b.RotatedTo, InstanceID: b.InstanceID, MaxInstances: b.MaxInstances}
	if b.ExpiresAt != nil {
		e.ExpiresAt = b.ExpiresAt.UTC()
	}
	return e
}

// AppendEvents implements licensing.EventLog in one statement (so one
// transaction): it takes len(events) seqs from event_seq and inserts the
// events with them, in order, skipping (ON CONFLICT (id) DO NOTHING) those
// whose id the log holds; their seqs are left unused.
func (s *Store) AppendEvents(ctx context.Context, events []licensing.Event) error {
	if len(events) == 0 {
		return nil
	}
	ids := make([]string, len(events))
	orgs := make([]string, len(events))
	keys := make([]string, len(events))
	types := make([]string, len(events))
	times := make([]time.Time, len(events))
	bodies := make([]string, len(events))
	for i, e := range events {
		if e.ID == "" || e.Type == "" || e.Time.IsZero() {
			return fmt.Errorf("pgstore: append events: event %d (%q, %q) lacks an ID, a Type or a Time; nothing was appended", i, e.ID, e.Type)
		}
		b, err := json.Marshal(toBody(e))
		if err != nil {
			return fmt.Errorf("pgstore: append events: event %s: %w", e.ID, err)
		}
		ids[i], orgs[i], keys[i], types[i], times[i], bodies[i] = e.ID, e.OrganizationID, e.KeyID, string(e.Type), e.Time, string(b)
	}
	_, err := s.pool.Exec(ctx, `WITH counter AS (UPDATE event_seq SET n = n + $1 RETURNING n)
		INSERT INTO license_events (seq, id, org_id, key_id, type, occurred_at, body)
		SELECT counter.n - $1 + v.ord, v.id, v.org_id, v.key_id, v.type, v.occurred_at, v.body::jsonb
		FROM counter, unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[])
			WITH ORDINALITY AS v(id, org_id, key_id, type, occurred_at, body, ord)
		ON CONFLICT (id) DO NOTHING`, int64(len(events)), ids, orgs, keys, types, times, bodies)
	if err != nil {
		return storeErr("append events", err)
	}
	return nil
}

// Events implements licensing.EventLog with one query on the index of the
// filters given.
func (s *Store) Events(ctx context.Context, orgID string, q licensing.EventQuery) ([]licensing.Event, error) {
	var sql strings.Builder
	args := []any{orgID}
	sql.WriteString(`SELECT seq, body FROM license_events WHERE org_id = $1`)
	arg := func(cond string, v any) {
		args = append(args, v)
		sql.WriteString(" AND " + cond + " $" + strconv.Itoa(len(args)))
	}
	if q.Before > 0 && q.Before <= math.MaxInt64 { // a larger one bounds nothing
		arg("seq <", int64(q.Before))
	}
	if q.KeyID != "" {
		arg("key_id =", q.KeyID)
	}
	if q.Type != "" {
		arg("type =", string(q.Type))
	}
	sql.WriteString(" ORDER BY seq DESC")
	if q.Limit > 0 {
		args = append(args, q.Limit)
		sql.WriteString(" LIMIT $" + strconv.Itoa(len(args)))
	}
	return s.queryEvents(ctx, "events", sql.String(), args...)
}

// EventsAfter implements licensing.EventLog on the primary key's index;
// limit 0 gives all.
func (s *Store) EventsAfter(ctx context.Context, after uint64, limit int) ([]licensing.Event, error) {
	if after >= math.MaxInt64 {
		return []licensing.Event{}, nil
	}
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	return s.queryEvents(ctx, "events after", `SELECT seq, body FROM license_events WHERE seq > $1 ORDER BY seq LIMIT $2`,
		int64(after), lim)
}

func (s *Store) queryEvents(ctx context.Context, what, sql string, args ...any) ([]licensing.Event, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, storeErr(what, err)
	}
	defer rows.Close()
	events := []licensing.Event{}
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, storeErr(what, err)
		}
		var b eventBody
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, fmt.Errorf("pgstore: %s: event %d: %w", what, seq, err)
		}
		events = append(events, b.event(uint64(seq)))
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr(what, err)
	}
	return events, nil
}

// PruneEvents implements licensing.EventLog with one DELETE.
func (s *Store) PruneEvents(ctx context.Context, before time.Time, keep int) (int, error) {
	if keep < 0 {
		keep = 0
	}
	var n int
	err := s.pool.QueryRow(ctx, `WITH gone AS (
		DELETE FROM license_events WHERE occurred_at < $1
			OR ($2 > 0 AND seq <= (SELECT seq FROM license_events ORDER BY seq DESC OFFSET $2 LIMIT 1))
		RETURNING 1)
		SELECT count(*) FROM gone`, before, keep).Scan(&n)
	if err != nil {
		return 0, storeErr("prune events", err)
	}
	return n, nil
}

// ExpiringKeys implements licensing.EventLog on the partial index
// licensing_keys_expiring; limit 0 gives all.
func (s *Store) ExpiringKeys(ctx context.Context, until, afterExpiry time.Time, afterID string, limit int) ([]licensing.Key, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	// uuid order is the text order of canonical ids, and "" sorts first
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM licensing_keys
		WHERE active AND expires_at IS NOT NULL AND expires_at <= $1 AND expires_at >= $2
			AND (expires_at > $2 OR id::text COLLATE "C" > $3)
		ORDER BY expires_at, id LIMIT $4`, until, afterExpiry, afterID, lim)
	if err != nil {
		return nil, storeErr("expiring keys", err)
	}
	defer rows.Close()
	keys := []licensing.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("expiring keys", err)
	}
	return keys, nil
}
