package licensing

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Large answers (revocation lists over largeAnswerBytes, unpaged key lists
// of more than one chunk) are bounded twice, so that they cannot take the
// CPU that validation needs: at most HandlerConfig.MaxLargeAnswers are
// written at once (one more waits up to largeSlotWait for a slot, then is
// a 503 with Retry-After), and their bytes together are paced to
// HandlerConfig.LargeAnswerBytesPerSecond.
const (
	largeAnswerBytes = 64 << 10
	largeSlotWait    = time.Second
	busyRetryAfter   = "1" // seconds
	// largeChunk is how much of a large answer is written per pacing step.
	largeChunk = 64 << 10
)

// errBusy is the 503 answer to a large answer that found no slot.
var errBusy = &Error{Code: CodeUnavailable, Message: "Busy with other large answers; retry after the time in Retry-After."}

// takeLargeSlot takes one of the large-answer slots, waiting up to
// largeSlotWait, or answers errBusy (signed as rp says) with Retry-After
// and returns false. Call release once the answer is written.
func (h *Handler) takeLargeSlot(w http.ResponseWriter, r *http.Request, rp reply) (release func(), ok bool) {
	select {
	case h.large <- struct{}{}:
		return func() { <-h.large }, true
	default:
	}
	t := time.NewTimer(largeSlotWait)
	defer t.Stop()
	select {
	case h.large <- struct{}{}:
		return func() { <-h.large }, true
	case <-t.C:
	case <-r.Context().Done():
	}
	w.Header().Set("Retry-After", busyRetryAfter)
	h.fail(w, r, rp, errBusy)
	return nil, false
}

// pacer spreads bytes over time at rate bytes a second, over every
// caller, allowing a burst of a tenth of a second's worth: a virtual clock
// (next) advances by each write's share, and a write waits until it.
type pacer struct {
	mu   sync.Mutex
	rate float64
	next time.Time
}

// wait returns once n more bytes fit in the rate, or with ctx's error.
func (p *pacer) wait(ctx context.Context, n int) error {
	p.mu.Lock()
	now := time.Now()
	if floor := now.Add(-100 * time.Millisecond); p.next.Before(floor) {
		p.next = floor
	}
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	d := p.next.Sub(now)
	p.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writePaced writes b in largeChunk pieces, each once the pacer allows it.
// A request that goes away meanwhile has its answer broken off, never
// ended as if whole.
func (h *Handler) writePaced(ctx context.Context, w http.ResponseWriter, b []byte) {
	for len(b) > 0 {
		n := min(len(b), largeChunk)
		if err := h.pace.wait(ctx, n); err != nil {
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(b[:n]); err != nil {
			return
		}
		b = b[n:]
	}
}
