package licensing

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// recorder batches the records of successful validations, one per key and
// instance (so that every instance of a shared key is recorded), and
// writes them to the store in the background, so a validation never waits
// for a store write.
//
// A flush swaps the pending map for an empty one and writes the swapped-out
// batch without holding mu, so validations keep adding while it is written;
// a batch that fails to write stays in flight and is written again, before
// anything newer, by the next flush. When more than maxPending records are
// pending the background writer is woken early, so the map stays bounded
// by what the store can absorb rather than by the interval. The maps are
// keyed by key id, so that reads (overlay) find a key's records at once.
type recorder struct {
	store      Store
	logger     *slog.Logger
	maxPending int

	mu       sync.Mutex
	pending  map[string]keyRecords
	inflight map[string]keyRecords // being written; nil when none; read under mu, replaced only by flush
	spare    map[string]keyRecords // the last batch's map, emptied, to be the next pending one
	npending int                   // records in pending
	lastSize int                   // size of the last batch, to size the next map
	recs     []ValidationRecord    // reused by flush (under flushMu) for the store's batch

	flushMu  sync.Mutex // one flush at a time, so records reach the store in order
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// keyRecords are a key's pending records, one per instance (InstanceID,
// "" for validations that named none): the first inline, so that a key
// validated by one instance costs no allocation.
type keyRecords struct {
	first ValidationRecord
	more  []ValidationRecord // other instances', in arrival order
}

// add merges v into the record of its instance, or adds one; it reports
// whether it added.
func (k *keyRecords) add(v ValidationRecord) bool {
	if k.first.InstanceID == v.InstanceID {
		k.first.merge(v)
		return false
	}
	for i := range k.more {
		if k.more[i].InstanceID == v.InstanceID {
			k.more[i].merge(v)
			return false
		}
	}
	k.more = append(k.more, v)
	return true
}

// appendTo appends the key's records to recs, oldest validation first, so
// that applying them in turn leaves the key with its latest instance
// fields; the first carries the earliest FirstAt of them all, which sets
// ActivatedAt.
func (k *keyRecords) appendTo(recs []ValidationRecord) []ValidationRecord {
	start := len(recs)
	recs = append(append(recs, k.first), k.more...)
	if len(k.more) > 0 {
		group := recs[start:]
		slices.SortStableFunc(group, func(a, b ValidationRecord) int { return a.At.Compare(b.At) })
		for _, v := range group[1:] {
			if !v.FirstAt.IsZero() && (group[0].FirstAt.IsZero() || v.FirstAt.Before(group[0].FirstAt)) {
				group[0].FirstAt = v.FirstAt // a copy: the pending record keeps its own
			}
		}
	}
	return recs
}

// defaultMaxPending is the number of pending records that triggers an early flush.
const defaultMaxPending = 50_000

func newRecorder(store Store, every time.Duration, logger *slog.Logger) *recorder {
	r := &recorder{store: store, logger: logger, maxPending: defaultMaxPending,
		pending: map[string]keyRecords{},
		kick:    make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop(every)
	return r
}

func (r *recorder) loop(every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
		// Records stay pending while the store fails; say so once per
		// distinct error, not every tick.
		err := r.flush(context.Background())
		switch {
		case err != nil && err.Error() != lastErr:
			r.logger.Error("licensing: write validation records; keeping them pending", "err", err)
			lastErr = err.Error()
		case err == nil && lastErr != "":
			r.logger.Info("licensing: validation records written again")
			lastErr = ""
		}
	}
}

func (r *recorder) add(v ValidationRecord) {
	r.mu.Lock()
	if kr, ok := r.pending[v.KeyID]; ok {
		if kr.add(v) {
			r.npending++
		}
		r.pending[v.KeyID] = kr
	} else {
		r.pending[v.KeyID] = keyRecords{first: v}
		r.npending++
	}
	full := r.npending >= r.maxPending
	r.mu.Unlock()
	if full {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// overlay applies pending records to keys, so callers read their writes.
// A key's records (one per instance) are applied oldest first, so that its
// instance fields are the latest validation's.
func (r *recorder) overlay(keys []Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 && len(r.inflight) == 0 {
		return
	}
	var recs []ValidationRecord
	for i := range keys {
		recs = recs[:0]
		if kr, ok := r.inflight[keys[i].ID]; ok {
			recs = kr.appendTo(recs)
		}
		if kr, ok := r.pending[keys[i].ID]; ok {
			recs = kr.appendTo(recs)
		}
		if len(recs) == 0 {
			continue
		}
		for _, v := range recs {
			keys[i].ApplyValidation(v)
		}
		// the caller gets copies, not the records' own maps and slices
		keys[i].LastMetrics = maps.Clone(keys[i].LastMetrics)
		keys[i].LastViolations = slices.Clone(keys[i].LastViolations)
	}
}

// flush writes what is pending: first a batch left in flight by a failed
// write, then the pending map, swapped out in constant time.
func (r *recorder) flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	for {
		r.mu.Lock()
		batch := r.inflight
		retry := batch != nil
		if batch == nil {
			if len(r.pending) == 0 {
				r.mu.Unlock()
				return nil
			}
			fresh := r.spare
			r.spare = nil
			if fresh == nil {
				r.mu.Unlock()
				fresh = make(map[string]keyRecords, r.lastSize) // made outside the lock
				r.mu.Lock()
			}
			batch = r.pending
			r.inflight, r.pending, r.npending = batch, fresh, 0
		}
		r.mu.Unlock()
		// Only flush replaces inflight, and it holds flushMu: batch can be
		// read without mu (overlay only reads it too).
		recs := r.recs[:0]
		for _, kr := range batch {
			recs = kr.appendTo(recs)
		}
		err := r.store.RecordValidations(ctx, recs)
		// The store has applied them: drop the references.
		clear(recs)
		if cap(recs) <= 2*r.maxPending { // keep a usual batch's room, not an outlier's
			r.recs = recs[:0]
		} else {
			r.recs = nil
		}
		if err != nil {
			return err // stays in flight, visible to overlay, written first next time
		}
		n := len(batch)
		if n <= 2*r.maxPending {
			// The two maps take turns, so a steady load allocates none;
			// emptied here, outside mu (nobody else reads batch now but
			// overlay, which takes mu and finds it no longer in flight).
			r.mu.Lock()
			r.inflight = nil
			r.mu.Unlock()
			clear(batch)
		} else {
			batch = nil // an outlier's map is not kept
		}
		r.mu.Lock()
		r.inflight = nil
		if batch != nil {
			r.spare = batch
		}
		r.lastSize = n
		more := r.npending >= r.maxPending
		r.mu.Unlock()
		if !retry && !more {
			return nil
		}
	}
}

func (r *recorder) close(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	return r.flush(ctx)
}

// ValidationRecord is what one or more successful validations of a key leave
// behind. The Service batches them (see Store.RecordValidations).
type ValidationRecord struct {
	KeyID string
	// InstanceID, when set, names the instance (see Instance.ID) that
	// validated: the store moves that instance's LastSeenAt to At (the
	// later) and sets its Name, URL and Metrics from the record's when
	// non-empty, if the key still has it.
	InstanceID   string
	FirstAt      time.Time          // earliest validation in the batch; sets ActivatedAt
	At           time.Time          // latest validation in the batch
	InstanceName string             // "" leaves the key's value unchanged
	InstanceURL  string             // "" leaves the key's value unchanged
	Metrics      map[string]float64 // nil leaves the key's value unchanged
	Violations   []string           // nil leaves the key's value unchanged
}

// merge folds a later record of the same key into r.
func (r *ValidationRecord) merge(later ValidationRecord) {
	if r.FirstAt.IsZero() || (!later.FirstAt.IsZero() && later.FirstAt.Before(r.FirstAt)) {
		r.FirstAt = later.FirstAt
	}
	if later.At.After(r.At) {
		r.At = later.At
	}
	if later.InstanceName != "" {
		r.InstanceName = later.InstanceName
	}
	if later.InstanceURL != "" {
		r.InstanceURL = later.InstanceURL
	}
	if later.Metrics != nil {
		r.Metrics = later.Metrics
	}
	if later.Violations != nil {
		r.Violations = later.Violations
	}
}
