package licensing

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// recorder batches validation records so that no validation waits on a
// store write.
type recorder struct {
	store    Store
	logger   *slog.Logger
	mu       sync.Mutex
	pending  map[string]ValidationRecord
	flushMu  sync.Mutex // one flush at a time, so records reach the store in order
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newRecorder(store Store, every time.Duration, logger *slog.Logger) *recorder {
	r := &recorder{store: store, logger: logger, pending: map[string]ValidationRecord{},
		stop: make(chan struct{}), done: make(chan struct{})}
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
}

func (r *recorder) add(v ValidationRecord) {
	r.mu.Lock()
	if old, ok := r.pending[v.KeyID]; ok {
		old.merge(v)
		v = old
	}
	r.pending[v.KeyID] = v
	r.mu.Unlock()
}

// overlay applies pending records to keys, so callers read their writes.
func (r *recorder) overlay(keys []Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		return
	}
	for i := range keys {
		if v, ok := r.pending[keys[i].ID]; ok {
			keys[i].ApplyValidation(v)
		}
	}
}

func (r *recorder) flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	batch := make([]ValidationRecord, 0, len(r.pending))
	for _, v := range r.pending {
		batch = append(batch, v)
	}
	r.mu.Unlock()
	// Records stay pending (visible to overlay) until written.
	err := r.store.RecordValidations(ctx, batch)
	if err != nil {
		return err
	}
	r.mu.Lock()
	for _, v := range batch {
		if cur, ok := r.pending[v.KeyID]; ok && cur.At.Equal(v.At) && cur.FirstAt.Equal(v.FirstAt) {
			delete(r.pending, v.KeyID)
		}
	}
	r.mu.Unlock()
	return nil
}

func (r *recorder) close(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	return r.flush(ctx)
}
