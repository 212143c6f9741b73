package licensing

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/matryer/is"
)

// createdEvent is a key.created event as the Service appends it, of key i
// of organization org.
func createdEvent(org string, i int) Event {
	base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	return Event{ID: uuid.Must(uuid.NewV7()).String(), Type: EventKeyCreated, Time: base.Add(time.Duration(i) * time.Millisecond),
		KeyID: uuid.Must(uuid.NewRandom()).String(), OrganizationID: org, MaskedKey: "0123abcd...89abcdef", UserID: "user-1"}
}

// appendCreated appends n key.created events to m, in batches, keeping none
// of them outside the store.
func appendCreated(tb testing.TB, m *MemoryStore, n int) {
	tb.Helper()
	const batch = 1000
	events := make([]Event, 0, batch)
	for i := 0; i < n; i += batch {
		events = events[:0]
		for j := i; j < min(i+batch, n); j++ {
			events = append(events, createdEvent(fmt.Sprint("org-", j%10), j))
		}
		if err := m.AppendEvents(context.Background(), events); err != nil {
			tb.Fatal(err)
		}
	}
	clear(events[:cap(events)])
}

// heapReading is what the collector has to look at after a forced
// collection: heap objects and scannable heap bytes.
func heapReading() (objects, scan uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/objects:objects"}, {Name: "/gc/scan/heap:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// BenchmarkEventLogGC reports the time of a forced collection (best of 5)
// with 1,000,000 key.created events in a MemoryStore's event log.
func BenchmarkEventLogGC(b *testing.B) {
	const n = 1_000_000
	m := NewMemoryStore()
	appendCreated(b, m, n)
	objects, scan := heapReading()
	best := time.Duration(1 << 62)
	for b.Loop() {
		for range 5 {
			start := time.Now()
			runtime.GC()
			best = min(best, time.Since(start))
		}
	}
	b.ReportMetric(float64(best.Microseconds())/1000, "gc-ms")
	b.ReportMetric(float64(objects), "heap-objects")
	b.ReportMetric(float64(scan)/n, "scan-B/event")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/n, "heap-B/event")
	runtime.KeepAlive(m)
}

// TestEventLogHeldWithoutObjectsPerEvent: 100,000 events appended to a
// MemoryStore leave the collector fewer than 1,000 new heap objects and
// fewer than 2 new scannable bytes an event to look at (an Event a heap
// object with its strings, as the log held them, was 3 objects and 400
// scannable bytes an event, and a forced collection with a million of them
// took 100 ms).
func TestEventLogHeldWithoutObjectsPerEvent(t *testing.T) {
	is := is.New(t)
	const n = 100_000
	m := NewMemoryStore()
	objects, scan := heapReading()
	appendCreated(t, m, n)
	objectsAfter, scanAfter := heapReading()
	t.Logf("%d events: %d more heap objects, %d more scannable bytes", n, int64(objectsAfter-objects), int64(scanAfter-scan))
	is.True(int64(objectsAfter-objects) < n/100) // heap objects
	is.True(int64(scanAfter-scan) < 2*n)         // scannable bytes
	all, err := m.EventsAfter(context.Background(), 0, 0)
	is.NoErr(err)
	is.Equal(len(all), n) // all held
}
