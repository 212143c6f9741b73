package licensing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
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
	is.Equal(r.pending.len()+r.inflight.len(), 0)
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
	is.True(r.pending.len() <= 1000-n)
	r.mu.Unlock()
	is.NoErr(r.close(context.Background()))
	n, last := st.written()
	is.Equal(len(last), 1000) // every key written, none lost in the swaps
	is.True(n >= 1000)
}

// TestSortRecordsOrdersByTime: sortRecords leaves records in the order of
// their latest validation, records of one time in the order they came, for
// batches sorted, reversed and shuffled.
func TestSortRecordsOrdersByTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	shuffled := make([]ValidationRecord, 1000)
	for i := range shuffled {
		shuffled[i] = ValidationRecord{KeyID: strconv.Itoa(i), At: t0.Add(time.Duration(i*7919%1000/3) * time.Second)}
	}
	sorted := slices.Clone(shuffled)
	slices.SortStableFunc(sorted, func(a, b ValidationRecord) int { return a.At.Compare(b.At) })
	reversed := slices.Clone(sorted)
	slices.Reverse(reversed)
	for name, recs := range map[string][]ValidationRecord{"shuffled": shuffled, "sorted": sorted, "reversed": reversed,
		"one": shuffled[:1], "none": nil} {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			want := slices.Clone(recs)
			slices.SortStableFunc(want, func(a, b ValidationRecord) int { return a.At.Compare(b.At) })
			got := slices.Clone(recs)
			sortRecords(got)
			is.Equal(got, want)
		})
	}
}
