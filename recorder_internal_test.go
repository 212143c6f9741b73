package licensing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

// batchStore records the batches written to it and fails while failing is set.
type batchStore struct {
	Store
	mu      sync.Mutex
	failing bool
	batches [][]ValidationRecord
}

func (s *batchStore) RecordValidations(ctx context.Context, recs []ValidationRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return errors.New("disk on fire")
	}
	s.batches = append(s.batches, append([]ValidationRecord(nil), recs...))
	return nil
}

func (s *batchStore) written() (n int, last map[string]ValidationRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last = map[string]ValidationRecord{}
	for _, b := range s.batches {
		for _, r := range b {
			n++
			last[r.KeyID] = r
		}
	}
	return n, last
}

func TestRecorderRetriesAFailedBatchBeforeNewerRecords(t *testing.T) {
	is := is.New(t)
	st := &batchStore{failing: true}
	r := newRecorder(st, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.add(ValidationRecord{KeyID: "a", FirstAt: t0, At: t0, InstanceURL: "https://old.example"})
	is.True(r.flush(context.Background()) != nil) // the write fails: the batch stays in flight
	r.add(ValidationRecord{KeyID: "a", FirstAt: t0.Add(time.Second), At: t0.Add(time.Second), InstanceURL: "https://new.example"})
	keys := []Key{{ID: "a"}}
	r.overlay(keys)
	is.Equal(keys[0].InstanceURL, "https://new.example") // the newer pending record wins in reads
	is.Equal(keys[0].ActivatedAt, t0)                    // the in-flight one still counts
	st.mu.Lock()
	st.failing = false
	st.mu.Unlock()
	is.NoErr(r.close(context.Background()))
	is.Equal(len(st.batches), 2)
	is.Equal(st.batches[0][0].InstanceURL, "https://old.example") // the old batch first
	is.Equal(st.batches[1][0].InstanceURL, "https://new.example") // then the newer one
	r.overlay(keys[:0])
	is.Equal(len(r.pending)+len(r.inflight), 0)
}

func TestRecorderFlushesEarlyWhenPendingIsFull(t *testing.T) {
	is := is.New(t)
	st := &batchStore{}
	r := newRecorder(st, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil))) // the ticker never fires
	r.maxPending = 100
	now := time.Now()
	for i := 0; i < 1000; i++ {
		r.add(ValidationRecord{KeyID: string(rune('a'+i%26)) + string(rune(0x100+i)), At: now})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := st.written(); n >= 900 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	n, _ := st.written()
	is.True(n >= 900) // written without waiting for the hour-long interval
	r.mu.Lock()
	is.True(len(r.pending) <= 1000-n)
	r.mu.Unlock()
	is.NoErr(r.close(context.Background()))
	n, last := st.written()
	is.Equal(len(last), 1000) // every key written, none lost in the swaps
	is.True(n >= 1000)
}

// TestRecorderKeepsEveryInstance: a key validated by several instances has
// one pending record per instance, counted against maxPending; reads see
// the latest validation's instance fields, and the store gets every
// instance's record, the latest applied last.
func TestRecorderKeepsEveryInstance(t *testing.T) {
	is := is.New(t)
	st := &batchStore{}
	r := newRecorder(st, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, inst := range []string{"b", "a", "c", "a", "b"} {
		at := t0.Add(time.Duration(i) * time.Second)
		r.add(ValidationRecord{KeyID: "k", InstanceID: inst, FirstAt: at, At: at, InstanceURL: "https://" + inst + ".example"})
	}
	r.mu.Lock()
	is.Equal(r.npending, 3) // one record per instance
	r.mu.Unlock()
	keys := []Key{{ID: "k"}, {ID: "other"}}
	r.overlay(keys)
	is.Equal(keys[0].InstanceURL, "https://b.example") // the latest validation's
	is.Equal(keys[0].ActivatedAt, t0)
	is.Equal(keys[0].LastValidatedAt, t0.Add(4*time.Second))
	is.Equal(keys[1].LastValidatedAt, time.Time{}) // another key untouched
	is.NoErr(r.close(context.Background()))
	is.Equal(len(st.batches), 1)
	var order []string
	for _, rec := range st.batches[0] {
		order = append(order, rec.InstanceID)
	}
	is.Equal(order, []string{"c", "a", "b"}) // oldest latest-validation first
}
