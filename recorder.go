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
// anything newer, by the next flush. When more than maxPending keys are
// pending the background writer is woken early, so the map stays bounded
// by what the store can absorb rather than by the interval.
type recorder struct {
	store      Store
	logger     *slog.Logger
	maxPending int

	mu       sync.Mutex
	pending  *recordBatch
	inflight *recordBatch       // being written; nil when none; read under mu, replaced only by flush
	spare    *recordBatch       // the last batch, emptied, to be the next pending one; nil when none
	lastSize int                // size of the last batch, to size the next one
	recs     []ValidationRecord // reused by flush (under flushMu) for the store's batch, sorted

	flushMu  sync.Mutex // one flush at a time, so records reach the store in order
	kick     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// recordKey is what the recorder keeps one pending record for.
type recordKey struct{ keyID, instanceID string }

// recordBatch is records in the order their keys and instances first came,
// with an index to merge a later record into its own. The records are kept
// in a slice, not as the index's values: a map keeps values of more than 128
// bytes (a record has 160) in allocations of their own, one per record.
type recordBatch struct {
	index map[recordKey]int32 // into recs
	recs  []ValidationRecord
}

func newRecordBatch(n int) *recordBatch {
	return &recordBatch{index: make(map[recordKey]int32, n), recs: make([]ValidationRecord, 0, n)}
}

// len returns the number of records in b, 0 for a nil b.
func (b *recordBatch) len() int {
	if b == nil {
		return 0
	}
	return len(b.recs)
}

func (b *recordBatch) add(v ValidationRecord) {
	rk := recordKey{v.KeyID, v.InstanceID}
	if i, ok := b.index[rk]; ok {
		b.recs[i].merge(v)
		return
	}
	b.index[rk] = int32(len(b.recs))
	b.recs = append(b.recs, v)
}

// reset empties b, keeping its room, and drops its references.
func (b *recordBatch) reset() {
	clear(b.index)
	clear(b.recs)
	b.recs = b.recs[:0]
}

// defaultMaxPending is the number of pending records that triggers an early
// flush. It is small enough for the pending map (about 200 bytes a record)
// to stay in a core's cache, and for a batch to reach the store while the
// keys it touches were read moments ago: with a million keys validated in
// turn, a batch of 50,000 cost 20% more per validation than one of 4,096.
const defaultMaxPending = 4096

// keptRecords is the largest batch whose room a flush keeps for the next
// batch. Validations keep adding while the writer wakes up and writes, so
// under load a batch is often several times maxPending.
const keptRecords = 65_536

func newRecorder(store Store, every time.Duration, logger *slog.Logger) *recorder {
	r := &recorder{store: store, logger: logger, maxPending: defaultMaxPending,
		pending: newRecordBatch(0),
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
	r.pending.add(v)
	full := r.pending.len() >= r.maxPending
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
	if r.pending.len() == 0 && r.inflight.len() == 0 {
		return
	}
	index := make(map[string]int, len(keys))
	for i := range keys {
		index[keys[i].ID] = i
	}
	var found []ValidationRecord
	for _, batch := range []*recordBatch{r.inflight, r.pending} {
		if batch == nil {
			continue
		}
		for _, v := range batch.recs {
			if _, ok := index[v.KeyID]; ok {
				found = append(found, v)
			}
		}
	}
	sortRecords(found)
	touched := map[int]bool{}
	for _, v := range found {
		i := index[v.KeyID]
		keys[i].ApplyValidation(v)
		touched[i] = true
	}
	for i := range touched {
		// the caller gets copies, not the records' own maps and slices
		keys[i].LastMetrics = maps.Clone(keys[i].LastMetrics)
		keys[i].LastViolations = slices.Clone(keys[i].LastViolations)
	}
}

// sortRecords orders recs by the time of their latest validation, so that
// applying them in turn leaves each key with its latest instance fields.
// It sorts their indices, then moves each record once (a record is 150
// bytes: sorting them in place moved each many times, the largest cost of a
// flush of 50,000 records).
func sortRecords(recs []ValidationRecord) {
	before := func(i, j int) bool { return recs[i].At.Before(recs[j].At) }
	sorted := true
	for i := 1; i < len(recs) && sorted; i++ {
		sorted = !before(i, i-1)
	}
	if sorted {
		return
	}
	idx := make([]int32, len(recs)) // recs[idx[i]] goes to i
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return recs[a].At.Compare(recs[b].At) })
	for i := range idx { // follow each cycle of the permutation, marking done places -1
		if idx[i] < 0 {
			continue
		}
		first, j := recs[i], i
		for {
			k := int(idx[j])
			idx[j] = -1
			if k == i {
				recs[j] = first
				break
			}
			recs[j], j = recs[k], k
		}
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
			if r.pending.len() == 0 {
				r.mu.Unlock()
				return nil
			}
			fresh := r.spare
			r.spare = nil
			if fresh == nil {
				r.mu.Unlock()
				fresh = newRecordBatch(r.lastSize) // made outside the lock
				r.mu.Lock()
			}
			batch = r.pending
			r.inflight, r.pending = batch, fresh
		}
		r.mu.Unlock()
		// Only flush replaces inflight, and it holds flushMu: batch can be
		// read without mu (overlay only reads it too).
		recs := append(r.recs[:0], batch.recs...)
		sortRecords(recs) // a key's records from several instances: the latest applied last
		err := r.store.RecordValidations(ctx, recs)
		// The store has applied them: drop the references.
		clear(recs)
		if cap(recs) <= keptRecords { // keep a usual batch's room, not an outlier's
			r.recs = recs[:0]
		} else {
			r.recs = nil
		}
		if err != nil {
			return err // stays in flight, visible to overlay, written first next time
		}
		n := batch.len()
		if n <= keptRecords {
			// The two batches take turns, so a steady load allocates none;
			// emptied here, outside mu (nobody else reads batch now but
			// overlay, which takes mu and finds it no longer in flight).
			r.mu.Lock()
			r.inflight = nil
			r.mu.Unlock()
			batch.reset()
		} else {
			batch = nil // an outlier's room is not kept
		}
		r.mu.Lock()
		r.inflight = nil
		if batch != nil {
			r.spare = batch
		}
		r.lastSize = n
		more := r.pending.len() >= r.maxPending
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

	// key is set by the Service when its store is a MemoryStore: the
	// store's own record of the key, so that the store applies the record
	// without finding the key again, and the promise that Metrics is the
	// Service's copy (or the store's own map), which nobody changes, so the
	// store keeps it as it is.
	key *memKey
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
	if later.key != nil {
		r.key = later.key
	}
}
