package filestore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/licensekit/licensing"
)

// Instances and seats live in the MemoryStore the store keeps its keys in,
// which decides seats by its rules (the same as the memory store's). What
// changes who holds a seat is a log record, fsynced before the call
// returns: a new seat (SeatInstance), a release (ReleaseInstance), a limit
// (SetMaxInstances). The updates of an instance that already holds a seat
// stay in memory, until RecordValidations brings a record naming the
// instance, which is logged like any validation record: validations of
// known instances write nothing on their own.
//
// A seat is decided and written under its key's seat lock (one of
// seatStripes), held until its record is durable: another new instance of
// the key (and Instances) waits for that record rather than see a seat that
// is not durable yet, and a failed write takes the seat back. An instance
// that holds a seat is updated without that lock: its validation never
// waits for a disk write. One process at
// a time holds the directory (LOCK), so this is atomic for every user of
// the store.

// seatStripes is the number of seat locks; keys share them by hash.
const seatStripes = 1024

// seatLocks are the per-key locks of seat decisions, by stripe.
type seatLocks struct {
	seed  maphash.Seed
	locks [seatStripes]sync.Mutex
}

func newSeatLocks() *seatLocks { return &seatLocks{seed: maphash.MakeSeed()} }

// of returns the lock of key keyID.
func (l *seatLocks) of(keyID string) *sync.Mutex {
	return &l.locks[maphash.String(l.seed, keyID)%seatStripes]
}

// SetMaxInstances implements licensing.Store: the limit is fsynced before it
// returns. Like the lifetime writes, it checks the key and applies its
// record holding s.apply exclusively, so that a revocation is never between
// its check and its record (the log replays as memory applied it).
func (s *Store) SetMaxInstances(ctx context.Context, id string, n int) (licensing.Key, error) {
	if err := ctx.Err(); err != nil {
		return licensing.Key{}, err
	}
	if n < 0 || n > licensing.MaxInstancesLimit {
		return licensing.Key{}, licensing.ErrInvalidMaxInstances
	}
	if err := s.writable(); err != nil {
		return licensing.Key{}, err
	}
	s.apply.Lock()
	defer s.apply.Unlock()
	k, err := s.mem.KeyByID(ctx, id)
	if err != nil {
		return licensing.Key{}, err
	}
	if !k.Active {
		return licensing.Key{}, licensing.ErrKeyRevoked
	}
	e := &encoder{}
	encodeMaxInstances(e, id, n)
	if err := s.commit(e.b); err != nil {
		return licensing.Key{}, err
	}
	// Not ctx: the record is durable, memory must have it.
	return s.mem.SetMaxInstances(context.Background(), id, n)
}

// SeatInstance implements licensing.Store. A new seat is fsynced before it
// returns; the update of an instance that holds one is made in memory only
// (RecordValidations makes it durable), without waiting for the seat lock. If the new seat's write fails, the
// seat is taken back and the store is in its failed state (an instance the
// MaxInstancesLimit bound forgot to make room for it stays forgotten).
func (s *Store) SeatInstance(ctx context.Context, keyID string, inst licensing.Instance, limit int, lease time.Duration) (int, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	if inst.ID == "" { // the log could not read such a seat back
		return 0, false, errors.New("filestore: seat instance: the instance has no ID (see licensing.Instance.ID)")
	}
	if seated, ok := s.bulk.RefreshInstance(keyID, inst, lease); ok {
		// It holds a seat: updated in memory, without the seat lock, so
		// that it never waits for another instance's seat record (its
		// count may include a seat whose record is being written).
		return seated, false, nil
	}
	mu := s.seats.of(keyID)
	mu.Lock()
	defer mu.Unlock()
	seated, added, err := s.mem.SeatInstance(ctx, keyID, inst, limit, lease)
	if err != nil || !added {
		return seated, added, err
	}
	e := &encoder{}
	encodeSeat(e, keyID, lease, inst)
	err = s.writable()
	if err == nil {
		// s.apply is taken after memory has the seat: a compaction in
		// between writes it into its snapshot, and the record then lands
		// in the new log, which a replay applies as an update of a known
		// instance, to the same state.
		s.apply.RLock()
		err = s.commit(e.b)
		s.apply.RUnlock()
	}
	if err != nil {
		// Not ctx: memory must not keep a seat the log does not have.
		s.mem.ReleaseInstance(context.Background(), keyID, inst.ID)
		return 0, false, err
	}
	s.liveSize.Add(int64(len(e.b) + frameSize))
	return seated, true, nil
}

// Instances implements licensing.Store from memory, under the key's seat
// lock: a seat whose record is not durable yet is not listed (the call
// waits for it).
func (s *Store) Instances(ctx context.Context, keyID string, now time.Time, lease time.Duration) ([]licensing.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mu := s.seats.of(keyID)
	mu.Lock()
	defer mu.Unlock()
	return s.mem.Instances(ctx, keyID, now, lease)
}

// ReleaseInstance implements licensing.Store: the release is fsynced before
// it returns.
func (s *Store) ReleaseInstance(ctx context.Context, keyID, instanceID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.mem.KeyByID(ctx, keyID); err != nil {
		return err
	}
	mu := s.seats.of(keyID)
	mu.Lock()
	defer mu.Unlock()
	if !s.bulk.HasInstance(keyID, instanceID) { // seats change only under mu: it stays so until we release it
		return licensing.ErrInstanceNotFound
	}
	if err := s.writable(); err != nil {
		return err
	}
	e := &encoder{}
	encodeRelease(e, keyID, instanceID)
	s.apply.RLock()
	defer s.apply.RUnlock()
	if err := s.commit(e.b); err != nil {
		return err
	}
	// Not ctx: the release is durable, memory must have it.
	return s.mem.ReleaseInstance(context.Background(), keyID, instanceID)
}

// replayInstanceRecord applies a recMaxInstances, recSeat or recRelease
// record at Open.
func (s *Store) replayInstanceRecord(p []byte) error {
	d := newDecoder(p)
	ctx := context.Background()
	switch p[0] {
	case recMaxInstances:
		id, n := decodeMaxInstances(d)
		if d.err != nil {
			return d.err
		}
		if _, err := s.mem.SetMaxInstances(ctx, id, n); err != nil {
			return fmt.Errorf("maxInstances of %s: %w", id, err)
		}
	case recSeat:
		keyID, lease, in := decodeSeat(d)
		if d.err != nil {
			return d.err
		}
		// The seat was decided when it was taken: no limit now. The
		// instances its lease had run out for are forgotten once the log is
		// read (pruneReplayedSeats): a sighting that kept one may come later
		// in the log, in a batch of validation records.
		if err := s.bulk.ReplaySeat(keyID, in, lease); err != nil {
			return fmt.Errorf("seat of instance %q on %s: %w", in.ID, keyID, err)
		}
		if s.replayedSeats == nil {
			s.replayedSeats = map[string]time.Time{}
		}
		if cut, ok := s.replayedSeats[keyID]; !ok || in.LastSeenAt.Add(-lease).After(cut) {
			s.replayedSeats[keyID] = in.LastSeenAt.Add(-lease)
		}
		s.liveSize.Add(int64(len(p) + frameSize))
	case recRelease:
		keyID, id := decodeRelease(d)
		if d.err != nil {
			return d.err
		}
		// An instance the replay already forgot (its lease ran out by the
		// durable sightings; memory had later ones) is released all the same.
		if err := s.mem.ReleaseInstance(ctx, keyID, id); err != nil && !errors.Is(err, licensing.ErrInstanceNotFound) {
			return fmt.Errorf("release of instance %q of %s: %w", id, keyID, err)
		}
	}
	return nil
}

// pruneReplayedSeats forgets, once the log is read, the instances that the
// seats of their key forgot when they were taken: those seen at or before
// a seat's time less its lease (the latest such cut of the key), by their
// sightings up to then, which are all in the log by now.
func (s *Store) pruneReplayedSeats() {
	for keyID, cut := range s.replayedSeats {
		s.bulk.PruneInstances(keyID, cut, 0)
	}
	s.replayedSeats = nil
}
