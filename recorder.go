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
	pending  *recordBatch
	inflight *recordBatch       // being written; nil when none; read under mu, replaced only by flush
	spare    *recordBatch       // the last batch, emptied, to be the next pending one; nil when none
	lastSize int                // keys in the last batch, to size the next one
	recs     []ValidationRecord // reused by flush (under flushMu) for the store's batch

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

// recordBatch is the pending records of keys, in the order the keys first
// came, with an index by key id. The records are kept in a slice, not as
// the index's values: a map keeps values of more than 128 bytes (a key's
// records take 200) in allocations of their own, one per key.
type recordBatch struct {
	index map[string]int32 // key id -> keys
	keys  []keyRecords
	n     int // records, at least one per key
}

func newRecordBatch(n int) *recordBatch {
	return &recordBatch{index: make(map[string]int32, n), keys: make([]keyRecords, 0, n)}
}

// add merges v into its key's records.
func (b *recordBatch) add(v ValidationRecord) {
	if i, ok := b.index[v.KeyID]; ok {
		if b.keys[i].add(v) {
			b.n++
		}
		return
	}
	b.index[v.KeyID] = int32(len(b.keys))
	b.keys = append(b.keys, keyRecords{first: v})
	b.n++
}

// get returns the records of key id, or nil; b may be nil.
func (b *recordBatch) get(id string) *keyRecords {
	if b == nil {
		return nil
	}
	if i, ok := b.index[id]; ok {
		return &b.keys[i]
	}
	return nil
}

// records returns the number of records in b, 0 for a nil b.
func (b *recordBatch) records() int {
	if b == nil {
		return 0
	}
	return b.n
}

// reset empties b, keeping its room, and drops its references.
func (b *recordBatch) reset() {
	clear(b.index)
	clear(b.keys)
	b.keys, b.n = b.keys[:0], 0
}

// defaultMaxPending is the number of pending records that triggers an early
// flush. It is small enough for the pending records (about 200 bytes each)
// to stay in a core's cache, and for a batch to reach the store while the
// keys it touches were read moments ago: with a million keys validated in
// turn, a batch of 50,000 cost a fifth more per validation than one of 4,096.
const defaultMaxPending = 4096

// keptRecords is the largest batch (in keys) whose room a flush keeps for
// the next batch. Validations keep adding while the writer wakes up and
// writes, so under load a batch is often several times maxPending.
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
	full := r.pending.records() >= r.maxPending
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
	if r.pending.records() == 0 && r.inflight.records() == 0 {
		return
	}
	var recs []ValidationRecord
	for i := range keys {
		recs = recs[:0]
		if kr := r.inflight.get(keys[i].ID); kr != nil {
			recs = kr.appendTo(recs)
		}
		if kr := r.pending.get(keys[i].ID); kr != nil {
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
			if r.pending.records() == 0 {
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
		recs := r.recs[:0]
		for i := range batch.keys {
			recs = batch.keys[i].appendTo(recs)
		}
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
		n := len(batch.keys)
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
		more := r.pending.records() >= r.maxPending
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
