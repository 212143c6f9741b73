package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/licensekit/licensing/internal/atomicfile"
)

// FileCursors is Cursors for a single process: the cursors live in one
// small JSON file, rewritten atomically and synced (internal/atomicfile)
// on every commit; the leases live in memory, which is enough where one
// process holds the data directory (the reference server's file store).
// With an empty path (NewMemoryCursors) nothing is written: the cursors
// last as long as the process, as the memory store's events do.
type FileCursors struct {
	path    string
	mu      sync.Mutex
	cursors map[string]uint64
	leases  map[string]lease
}

type lease struct {
	holder string
	until  time.Time
}

var _ Cursors = (*FileCursors)(nil)

// cursorFile is the file's content.
type cursorFile struct {
	Cursors map[string]uint64 `json:"cursors"` // endpoint -> Seq
}

// OpenFileCursors reads the cursors kept in path; a missing file holds
// none (every endpoint starts at the log's beginning). A file that is not
// what CommitCursor writes is an error that names it.
func OpenFileCursors(path string) (*FileCursors, error) {
	c := &FileCursors{path: path, cursors: map[string]uint64{}, leases: map[string]lease{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhook cursors: %w", err)
	}
	var f cursorFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("webhook cursors %s: %v: the server writes this file; restore it from a backup, or remove it to deliver every event in the log again", path, err)
	}
	for k, v := range f.Cursors {
		c.cursors[k] = v
	}
	return c, nil
}

// NewMemoryCursors returns cursors kept in memory only.
func NewMemoryCursors() *FileCursors {
	return &FileCursors{cursors: map[string]uint64{}, leases: map[string]lease{}}
}

// LeaseCursor implements Cursors.
func (c *FileCursors) LeaseCursor(ctx context.Context, endpoint, holder string, now time.Time, ttl time.Duration) (uint64, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leases[endpoint]; ok && l.holder != holder && l.until.After(now) {
		return c.cursors[endpoint], false, nil
	}
	c.leases[endpoint] = lease{holder: holder, until: now.Add(ttl)}
	return c.cursors[endpoint], true, nil
}

// CommitCursor implements Cursors.
func (c *FileCursors) CommitCursor(ctx context.Context, endpoint, holder string, cursor uint64, now time.Time, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A lease that ran out is still the holder's until another holder
	// takes it.
	if l, ok := c.leases[endpoint]; !ok || l.holder != holder {
		return ErrLeaseLost
	}
	c.leases[endpoint] = lease{holder: holder, until: now.Add(ttl)}
	if cursor <= c.cursors[endpoint] {
		return nil
	}
	old := c.cursors[endpoint]
	c.cursors[endpoint] = cursor
	if c.path == "" {
		return nil
	}
	b, _ := json.Marshal(cursorFile{Cursors: c.cursors})
	if err := atomicfile.Write(c.path, append(b, '\n')); err != nil {
		c.cursors[endpoint] = old
		return fmt.Errorf("webhook cursors: %w", err)
	}
	return nil
}
