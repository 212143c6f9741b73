package filestore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/matryer/is"

	"github.com/licensekit/licensing"
)

func testEvent(org string, i int) licensing.Event {
	return licensing.Event{ID: uuid.NewString(), Type: licensing.EventKeyShared, Time: base.Add(time.Duration(i) * time.Hour),
		KeyID: uuid.NewString(), OrganizationID: org, MaskedKey: "0123abcd...89abcdef", UserID: "user-1",
		Outcome: licensing.OutcomeRevoked, InstanceCount: i, ExpiresAt: base.Add(24 * time.Hour), RotatedTo: "r",
		InstanceID: fmt.Sprintf("inst-%d", i), MaxInstances: 7}
}

// TestEventsSurviveReopen: appended events, prunes and the greatest Seq
// are replayed from the log and from a snapshot alike; a Seq is never
// given twice, also after a prune, a compaction and a restart.
func TestEventsSurviveReopen(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	st := open(t, dir, Options{})
	var want []licensing.Event
	for i := range 10 {
		want = append(want, testEvent("org-1", i))
	}
	is.NoErr(st.AppendEvents(ctx, want[:6]))
	is.NoErr(st.AppendEvents(ctx, want[4:])) // 4 and 5 again: skipped
	n, err := st.PruneEvents(ctx, base.Add(2*time.Hour), 0)
	is.NoErr(err)
	is.Equal(n, 2)
	before, err := st.EventsAfter(ctx, 0, 0)
	is.NoErr(err)
	is.Equal(len(before), 8)
	is.NoErr(st.Close())

	reopened := func() []licensing.Event {
		t.Helper()
		st = open(t, dir, Options{})
		got, err := st.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		return got
	}
	is.Equal(reopened(), before) // from the log: every field and Seq
	is.NoErr(st.Compact())
	is.NoErr(st.Close())
	is.Equal(reopened(), before) // from the snapshot
	n, err = st.PruneEvents(ctx, time.Time{}, 1)
	is.NoErr(err)
	is.Equal(n, 7)
	is.NoErr(st.Compact())
	is.NoErr(st.Close())
	left := reopened()
	is.Equal(left, before[7:]) // pruned, compacted, reopened
	is.NoErr(st.AppendEvents(ctx, []licensing.Event{testEvent("org-1", 11)}))
	got, err := st.EventsAfter(ctx, 0, 0)
	is.NoErr(err)
	is.Equal(got[1].Seq, before[7].Seq+1) // the next Seq, never one given before
	listed, err := st.Events(ctx, "org-1", licensing.EventQuery{KeyID: got[1].KeyID})
	is.NoErr(err)
	is.Equal(len(listed), 1)
}

// TestEventLogFilesHoldNoKey: after a key's whole life through the
// Service, no file of the store holds the full key, in the log or in a
// snapshot.
func TestEventLogFilesHoldNoKey(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	st := open(t, dir, Options{})
	svc, err := licensing.New(licensing.Config{Store: st, Organizations: orgs{}, Pepper: bytes.Repeat([]byte{1}, 32),
		Logger: quiet(), Policy: licensing.Policy{Issuer: "licensing.test"}})
	is.NoErr(err)
	owner := licensing.Actor{UserID: "u", OrganizationID: "org-1"}
	created, err := svc.CreateKey(ctx, owner, licensing.CreateKeyInput{InstanceName: "prod", ExpiresAt: time.Now().Add(48 * time.Hour)})
	is.NoErr(err)
	_, err = svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: created.LicenseKey, InstanceID: "a"})
	is.NoErr(err)
	_, err = svc.IssueToken(ctx, owner, created.Key.ID, "")
	is.NoErr(err)
	rotated, _, err := svc.RotateKey(ctx, owner, created.Key.ID, time.Hour)
	is.NoErr(err)
	is.NoErr(svc.RevokeKey(ctx, owner, rotated.Key.ID))
	_, err = svc.ValidateKey(ctx, licensing.ValidateInput{LicenseKey: rotated.LicenseKey})
	is.True(err != nil)
	is.NoErr(svc.Flush(ctx))
	events, err := st.EventsAfter(ctx, 0, 0)
	is.NoErr(err)
	is.True(len(events) >= 6) // created, token, created, rotated, expiring, revoked, the revoked key used
	is.NoErr(svc.Close(ctx))
	is.NoErr(st.Compact())
	is.NoErr(st.AppendEvents(ctx, []licensing.Event{testEvent("org-1", 1)})) // a log after the snapshot too

	var files int
	is.NoErr(filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, k := range []string{created.LicenseKey, rotated.LicenseKey} {
			for _, part := range []string{k, strings.ToUpper(k), k[:32], k[32:]} {
				is.True(!bytes.Contains(b, []byte(part))) // no file holds a key or half of one
			}
		}
		return nil
	}))
	is.True(files >= 2)
}

// TestEventsRouteOnFileStore: GET /events answers from the file store.
func TestEventsRouteOnFileStore(t *testing.T) {
	is := is.New(t)
	st := open(t, t.TempDir(), Options{})
	svc, err := licensing.New(licensing.Config{Store: st, Organizations: orgs{}, Pepper: bytes.Repeat([]byte{1}, 32),
		Logger: quiet(), Policy: licensing.Policy{Issuer: "licensing.test"}})
	is.NoErr(err)
	defer svc.Close(ctx)
	auth := licensing.AuthenticatorFunc(func(*http.Request) (licensing.Actor, error) {
		return licensing.Actor{UserID: "u", OrganizationID: "org-1"}, nil
	})
	srv := httptest.NewServer(licensing.NewHandler(svc, auth, licensing.HandlerConfig{}))
	defer srv.Close()
	for range 3 {
		res, err := http.Post(srv.URL+"/api/v1/licensing/keys", "application/json", strings.NewReader(`{}`))
		is.NoErr(err)
		res.Body.Close()
	}
	res, err := http.Get(srv.URL + "/api/v1/licensing/events?limit=2&type=key.created")
	is.NoErr(err)
	defer res.Body.Close()
	is.Equal(res.StatusCode, 200)
	var body struct {
		Events     []map[string]any
		NextCursor *string
	}
	is.NoErr(json.NewDecoder(res.Body).Decode(&body))
	is.Equal(len(body.Events), 2)
	is.True(body.NextCursor != nil)
}

// TestEventTimesOutOfRangeRefused: an event whose Time or ExpiresAt the
// log cannot keep as Unix nanoseconds (the Unix epoch, which reads back
// as no time, and times before 1970 or after 2262-04-11, which wrap) is
// refused with the batch it came in, instead of coming back changed after
// a restart; a time just inside the range comes back exact.
func TestEventTimesOutOfRangeRefused(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	st := open(t, dir, Options{})
	for _, tc := range []struct{ at, expires time.Time }{
		{time.Unix(0, 0), time.Time{}},
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}},
		{base, time.Unix(0, 0)},
		{base, time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)},
		{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), base},
	} {
		e := testEvent("org-1", 1)
		e.Time, e.ExpiresAt = tc.at, tc.expires
		err := st.AppendEvents(ctx, []licensing.Event{testEvent("org-1", 0), e})
		is.True(err != nil)                                  // refused
		is.True(strings.Contains(err.Error(), "2262-04-11")) // naming the range
	}
	edge := testEvent("org-1", 2)
	edge.Time, edge.ExpiresAt = time.Unix(0, 1).UTC(), time.Unix(0, math.MaxInt64-1).UTC()
	is.NoErr(st.AppendEvents(ctx, []licensing.Event{edge}))
	is.NoErr(st.Close())
	st = open(t, dir, Options{})
	got, err := st.EventsAfter(ctx, 0, 0)
	is.NoErr(err)
	is.Equal(len(got), 1) // the refused batches stored nothing
	edge.Seq = got[0].Seq
	is.Equal(got[0], edge) // every field, the times exact
}

// TestEventPruneOutOfRangeReplayed: a prune whose before is beyond the
// times the log keeps as Unix nanoseconds (year 3000: everything; year
// 1600, with a count: only the count) deletes the same events after a
// restart as it did before it, from the log and from a snapshot.
func TestEventPruneOutOfRangeReplayed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before time.Time
		keep   int
		left   int
	}{
		{"year 3000", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 0, 0},
		{"year 3000 with a count", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 2, 0},
		{"year 1600 with a count", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 3, 3},
		{"the epoch with a count", time.Unix(0, 0), 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			st := open(t, dir, Options{})
			var events []licensing.Event
			for i := range 5 {
				events = append(events, testEvent("org-1", i))
			}
			is.NoErr(st.AppendEvents(ctx, events))
			n, err := st.PruneEvents(ctx, tc.before, tc.keep)
			is.NoErr(err)
			is.Equal(n, 5-tc.left)
			want, err := st.EventsAfter(ctx, 0, 0)
			is.NoErr(err)
			is.Equal(len(want), tc.left)
			is.NoErr(st.Close())
			for _, compact := range []bool{false, true} {
				st = open(t, dir, Options{})
				got, err := st.EventsAfter(ctx, 0, 0)
				is.NoErr(err)
				is.Equal(got, want) // the same events after a restart
				if compact {
					is.NoErr(st.Compact())
				}
				is.NoErr(st.Close())
			}
		})
	}
}

// TestEventsSurviveReopenRandom: random appends (ids again, Times going
// back now and then, so that prunes rebuild the log), prunes by age and
// count, compactions and restarts: each restart gives back the events as
// they were before it, every field and Seq, and a Seq never names two
// events.
func TestEventsSurviveReopenRandom(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	st := open(t, dir, Options{})
	r := rand.New(rand.NewPCG(1, 2))
	clock := base
	var ids []string
	seen := map[uint64]string{}
	for range 300 {
		switch op := r.IntN(10); {
		case op < 6:
			var batch []licensing.Event
			for range 1 + r.IntN(5) {
				clock = clock.Add(time.Duration(r.IntN(90)) * time.Second)
				e := testEvent([]string{"o1", "o2"}[r.IntN(2)], r.IntN(5))
				e.Time = clock.Add(time.Duration(r.IntN(1e9)))
				if r.IntN(5) == 0 {
					e.Time = e.Time.Add(-time.Duration(r.IntN(7200)) * time.Second)
				}
				if r.IntN(4) == 0 && len(ids) > 0 {
					e.ID = ids[r.IntN(len(ids))]
				}
				ids = append(ids, e.ID)
				batch = append(batch, e)
			}
			is.NoErr(st.AppendEvents(ctx, batch))
		case op < 8:
			var before time.Time
			if r.IntN(2) == 0 {
				before = clock.Add(-time.Duration(r.IntN(7200)) * time.Second)
			}
			_, err := st.PruneEvents(ctx, before, []int{0, 0, 3, 20}[r.IntN(4)])
			is.NoErr(err)
		case op < 9:
			is.NoErr(st.Compact())
		default:
			want, err := st.EventsAfter(ctx, 0, 0)
			is.NoErr(err)
			is.NoErr(st.Close())
			st = open(t, dir, Options{})
			got, err := st.EventsAfter(ctx, 0, 0)
			is.NoErr(err)
			if len(want) == 0 {
				is.Equal(len(got), 0)
			} else {
				is.Equal(got, want)
			}
			for _, org := range []string{"o1", "o2"} {
				a, _ := st.Events(ctx, org, licensing.EventQuery{})
				is.True(len(a) <= len(got))
			}
		}
		all, _ := st.EventsAfter(ctx, 0, 0)
		for _, e := range all {
			if id, ok := seen[e.Seq]; ok {
				is.Equal(id, e.ID)
			}
			seen[e.Seq] = e.ID
		}
	}
	st.Close()
}

// TestEventRecordsBoundedInBytes: events with large strings (1,000 of 70
// KB each, 70 MB in one AppendEvents) are written in records the log can
// read back, in the log and in a snapshot, so that the store opens again
// with every one of them; an event larger than a record can be is refused
// before anything is written.
func TestEventRecordsBoundedInBytes(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	st := open(t, dir, Options{})
	big := strings.Repeat("u", 70<<10)
	var events []licensing.Event
	for i := range 1000 {
		e := testEvent("org-1", i)
		e.UserID = big
		events = append(events, e)
	}
	is.NoErr(st.AppendEvents(ctx, events))
	huge := testEvent("org-1", 0)
	huge.InstanceID = strings.Repeat("i", maxRecordBytes)
	err := st.AppendEvents(ctx, []licensing.Event{huge})
	is.True(err != nil) // refused
	t.Log(err)
	want, err := st.EventsAfter(ctx, 0, 0)
	is.NoErr(err)
	is.Equal(len(want), 1000)
	is.NoErr(st.Close())
	for _, compact := range []bool{false, true} {
		st, err = Open(dir, Options{Logger: quiet()})
		is.NoErr(err) // opens
		got, err := st.EventsAfter(ctx, 0, 0)
		is.NoErr(err)
		is.Equal(got, want) // every event, every field
		if compact {
			is.NoErr(st.Compact())
		}
		is.NoErr(st.Close())
	}
	st = open(t, dir, Options{})
	got, err := st.EventsAfter(ctx, 0, 0)
	is.NoErr(err)
	is.Equal(len(got), 1000) // from the snapshot
	is.NoErr(st.Close())
}
