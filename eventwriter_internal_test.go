package licensing

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestEventLimiterBounded: the limiter keeps one event per key and type a
// period, and never remembers more than its bound, however many keys come.
func TestEventLimiterBounded(t *testing.T) {
	is := is.New(t)
	now := time.Date(2026, 2, 20, 10, 30, 0, 0, time.UTC)
	l := newEventLimiter(10*time.Minute, 100)
	is.True(l.allow("k", EventKeyShared, now))
	is.True(!l.allow("k", EventKeyShared, now.Add(9*time.Minute))) // within the period
	is.True(l.allow("k", EventKeyActivated, now))                  // another type
	is.True(l.allow("k", EventKeyShared, now.Add(10*time.Minute))) // the next period
	for i := range 10_000 {
		l.allow(fmt.Sprint("key-", i), EventKeyShared, now)
		is.True(l.remembered() <= 100) // bounded
	}
	// However many keys came, the last half of the bound are remembered:
	// a flood of events from more keys than the bound does not let each
	// key's events through again (forgetting all at once did).
	later := now.Add(time.Minute)
	for i := 10_000 - 50; i < 10_000; i++ {
		is.True(!l.allow(fmt.Sprint("key-", i), EventKeyShared, later)) // within the period
	}
}

// blockedLog is an EventLog whose appends wait until released.
type blockedLog struct {
	EventLog
	release chan struct{}
	got     int
}

func (b *blockedLog) AppendEvents(ctx context.Context, events []Event) error {
	<-b.release
	b.got += len(events)
	return nil
}

// TestEventWriterBounded: a store that does not keep up makes the writer
// drop and count events past its queue, never block the caller.
func TestEventWriterBounded(t *testing.T) {
	is := is.New(t)
	b := &blockedLog{release: make(chan struct{})}
	w := newEventWriter(b, slog.New(slog.DiscardHandler))
	for range eventQueueSize + eventBatch + 1000 {
		w.add(Event{ID: "x", Type: EventKeyShared, Time: time.Now()})
	}
	is.True(w.dropped.Load() >= 1000-1) // past the queue (and the batch in hand): dropped, counted
	close(b.release)
	w.close()
	is.Equal(uint64(b.got)+w.dropped.Load(), uint64(eventQueueSize+eventBatch+1000)) // every event written or counted
}
