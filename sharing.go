package licensing

import (
	"sync"
	"time"
)

// sharingTracker remembers, per key, the instance ids seen within a window.
// It holds at most maxKeys keys and 16 instance ids per key.
type sharingTracker struct {
	window  time.Duration
	maxKeys int
	mu      sync.Mutex
	keys    map[string][]instanceSeen
}

type instanceSeen struct {
	id   string
	last time.Time
}

const maxInstancesPerKey = 16

func newSharingTracker(window time.Duration, maxKeys int) *sharingTracker {
	return &sharingTracker{window: window, maxKeys: maxKeys, keys: map[string][]instanceSeen{}}
}

// seen records instance on key at now and returns how many distinct
// instances used the key within the window, and whether instance is new.
func (t *sharingTracker) seen(key, instance string, now time.Time) (n int, grew bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.keys[key]
	live := list[:0]
	found := false
	for _, s := range list {
		if s.id == instance {
			s.last, found = now, true
		}
		if now.Sub(s.last) <= t.window {
			live = append(live, s)
		}
	}
	if !found {
		if len(live) >= maxInstancesPerKey {
			live = live[1:]
		}
		live = append(live, instanceSeen{id: instance, last: now})
	}
	if _, ok := t.keys[key]; !ok && len(t.keys) >= t.maxKeys {
		for victim := range t.keys { // drop an arbitrary key to stay bounded
			delete(t.keys, victim)
			break
		}
	}
	t.keys[key] = live
	return len(live), !found && len(live) > 1
}
