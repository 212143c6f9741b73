package licensing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// hangingChecker is a store whose CheckPepper never answers; honoursCtx
// says whether it gives up when its context ends.
type hangingChecker struct {
	*MemoryStore
	honoursCtx bool
	release    chan struct{}
}

func (s hangingChecker) CheckPepper(ctx context.Context, fingerprint string) error {
	if s.honoursCtx {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.release:
		}
	}
	<-s.release
	return nil
}

// TestCheckStorePepperIsBounded: a store that does not answer the pepper
// check stops New with an error naming the store and the time it was
// given, whether or not the store honours its context; New never hangs.
func TestCheckStorePepperIsBounded(t *testing.T) {
	defer func(d time.Duration) { pepperCheckTimeout = d }(pepperCheckTimeout)
	pepperCheckTimeout = 20 * time.Millisecond
	for _, honours := range []bool{true, false} {
		is := is.New(t)
		release := make(chan struct{})
		err := checkStorePepper(hangingChecker{NewMemoryStore(), honours, release}, PepperFingerprint(make([]byte, 32)))
		close(release)
		is.True(err != nil)
		is.True(errors.Is(err, context.DeadlineExceeded))
		is.True(strings.Contains(err.Error(), "did not answer the pepper check within 20ms")) // the cause
		is.True(strings.Contains(err.Error(), "check that the store is reachable"))           // and the fix
	}
}
