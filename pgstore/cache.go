package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/licensekit/licensing"
)

// notifyChannel is the channel the triggers of migrations/005_notify.sql
// and 006_notify_replaced.sql notify, with a key id as payload, or '*'
// (after a TRUNCATE: every key), which empties the cache.
const notifyChannel = "licensing_keys"

// errNotYet is why a cache that has not listened yet is not usable.
var errNotYet = errors.New("not listening yet")

// listenerName is the application_name of the listening connection, as
// pg_stat_activity shows it.
const listenerName = "licensing-cache-listener"

// DefaultCacheKeys is CacheConfig.MaxKeys when it is zero.
const DefaultCacheKeys = 100_000

// Listener timings: how long the listening connection may be silent before
// it is pinged, how long a ping or a connection may take, and the longest
// wait between two attempts to listen again.
const (
	listenIdle    = 5 * time.Second
	listenTimeout = 2 * time.Second
	listenRetry   = 500 * time.Millisecond
)

// instancesTTL is how long at most a key's instances, once read, answer
// SeatInstance from memory (each entry lives a random time between half of
// it and all of it, so that keys read together are not all read again
// together): notifications tell of seats taken and freed (rows inserted
// and deleted), not of an instance that another server saw again after
// its lease ran out, so the count of seats is read again this often. A
// var for the tests.
var instancesTTL = 30 * time.Second

// maxCachedInstances is the most instances a key may have for them to be
// cached.
const maxCachedInstances = 64

// invalidationRing is how many recent invalidations the cache remembers so
// that a read of PostgreSQL that overlapped one of them is not cached.
const invalidationRing = 1024

// CacheConfig configures the read cache (Store.StartCache). The zero value
// is a cache of DefaultCacheKeys keys that logs nothing.
type CacheConfig struct {
	// MaxKeys bounds the key records kept; past it, an arbitrary one is
	// dropped to make room. 0: DefaultCacheKeys.
	MaxKeys int
	// Logger gets a line when the listening connection is lost and when it
	// is back; nil: none.
	Logger *slog.Logger
}

// cache is the read cache of a Store: key records by lookup value, in
// front of KeyByLookup, and the instances that hold a seat on a key, in
// front of SeatInstance, valid while a dedicated connection listens on
// notifyChannel. Every notification drops the records of its key; losing
// the connection empties the cache and bypasses it until listening again,
// and emptying it once more then (what changed in between is unknown).
//
// A record read from PostgreSQL is cached only if no invalidation of its
// key (nor an emptying) happened since the read began: seq counts the
// invalidations and ring holds the ids of the last invalidationRing of
// them; an emptying adds invalidationRing to seq, which fails every read
// in flight.
type cache struct {
	max    int
	logger *slog.Logger

	usable atomic.Bool // listening: the cache may be read and filled

	mu       sync.RWMutex
	byLookup map[string]*licensing.Key   // immutable once stored
	byID     map[string]string           // key id to lookup value, of the keys in byLookup
	inst     map[string]*cachedInstances // by key id
	seq      uint64
	ring     [invalidationRing]string

	// pending are the sightings of seated instances answered from memory
	// and not yet written by RecordValidations: Instances shows them.
	// They survive invalidations (they are this server's writes); at most
	// max of them, past which SeatInstance writes to PostgreSQL.
	pmu     sync.Mutex
	pending map[instanceKey]licensing.Instance

	state   sync.Mutex
	downErr error // why the cache is not usable; nil while listening
	since   time.Time

	stop context.CancelFunc
	done chan struct{}
}

// StartCache starts the read cache: KeyByLookup answers from memory the
// keys it has read before, as long as a dedicated connection (made with the
// pool's configuration, outside the pool) listens for the change
// notifications of migrations/005_notify.sql. A change made through any
// server or any SQL session reaches every server's cache once its
// transaction commits; a change made through this Store drops the record at
// once. While the connection is lost, the cache is empty and every read
// goes to PostgreSQL; the connection is retried every listenRetry at most.
// StartCache returns at once; Err reports whether it listens. Call Close to
// stop it. Calling it twice is an error.
func (s *Store) StartCache(cfg CacheConfig) error {
	if cfg.MaxKeys < 0 {
		return errors.New("pgstore: start cache: MaxKeys must not be negative")
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultCacheKeys
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &cache{max: cfg.MaxKeys, logger: cfg.Logger, byLookup: map[string]*licensing.Key{}, byID: map[string]string{},
		inst: map[string]*cachedInstances{}, pending: map[instanceKey]licensing.Instance{},
		stop: stop, done: make(chan struct{}),
		downErr: errNotYet, since: time.Now()}
	if !s.cache.CompareAndSwap(nil, c) {
		stop()
		return errors.New("pgstore: start cache: already started")
	}
	go c.run(ctx, s.pool.Config().ConnConfig)
	return nil
}

// Close stops the read cache, if started, and waits for its connection to
// close. The pool is the caller's to close.
func (s *Store) Close() error {
	if c := s.cache.Load(); c != nil {
		c.stop()
		<-c.done
	}
	return nil
}

// Err reports why the store cannot serve at the moment, wrapping
// licensing.ErrStoreUnavailable: the read cache is started and does not
// listen for changes (PostgreSQL is unreachable, or was until a moment
// ago); without the read cache, PostgreSQL does not answer a ping through
// the pool within listenTimeout (none is sent while every connection of
// the pool is at work: PostgreSQL answers them). nil otherwise. The
// reference server's /readyz answers 503 while it is not nil.
func (s *Store) Err() error {
	c := s.cache.Load()
	if c == nil {
		return s.ping()
	}
	c.state.Lock()
	defer c.state.Unlock()
	if c.downErr == nil {
		return nil
	}
	return fmt.Errorf("pgstore: %w: not listening for changes since %s: %v", licensing.ErrStoreUnavailable,
		c.since.UTC().Format(time.RFC3339), c.downErr)
}

// ping is Err without the read cache. A failed ping is tried once more,
// on another connection: the first may have been one that PostgreSQL
// ended while it sat idle in the pool.
func (s *Store) ping() error {
	var err error
	for range 2 {
		st := s.pool.Stat()
		if st.IdleConns() == 0 && st.TotalConns() >= st.MaxConns() {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), listenTimeout)
		err = s.pool.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("pgstore: %w: PostgreSQL does not answer: %v", licensing.ErrStoreUnavailable, err)
}

// run listens until ctx ends, connecting again after every loss.
func (c *cache) run(ctx context.Context, cfg *pgx.ConnConfig) {
	defer close(c.done)
	wait := 50 * time.Millisecond
	for {
		conn, err := c.connect(ctx, cfg)
		if err == nil {
			c.reset()
			c.usable.Store(true)
			c.setDown(nil)
			wait = 50 * time.Millisecond
			err = c.listen(ctx, conn)
			c.usable.Store(false)
			c.reset()
			closeCtx, cancel := context.WithTimeout(context.Background(), listenTimeout)
			conn.Close(closeCtx)
			cancel()
		}
		if ctx.Err() != nil {
			c.closed()
			return
		}
		c.setDown(err)
		select {
		case <-ctx.Done():
			c.closed()
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, listenRetry)
	}
}

// connect opens the listening connection.
func (c *cache) connect(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = listenerName
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// listen applies notifications until the connection fails or ctx ends. A
// connection silent for listenIdle is pinged, so that a peer that vanished
// without closing is noticed within listenIdle+listenTimeout.
func (c *cache) listen(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			c.invalidate(n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded):
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, listenTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}

// closed records that Close stopped the cache.
func (c *cache) closed() {
	c.state.Lock()
	defer c.state.Unlock()
	if c.downErr == nil {
		c.since = time.Now()
	}
	c.downErr = errors.New("the cache was closed")
}

// setDown records whether the cache listens (err nil) or why not, logging
// each change of state.
func (c *cache) setDown(err error) {
	c.state.Lock()
	defer c.state.Unlock()
	switch {
	case err == nil && c.downErr == errNotYet:
		c.logger.Info("pgstore: listening for changes; read cache on")
	case err == nil && c.downErr != nil:
		c.logger.Info("pgstore: listening for changes again; read cache on")
	case err != nil && (c.downErr == nil || c.downErr == errNotYet):
		c.logger.Error("pgstore: not listening for changes; read cache off, every read goes to PostgreSQL", "err", err)
	}
	if (err == nil) != (c.downErr == nil) {
		c.since = time.Now()
	}
	c.downErr = err
}

// reset empties the cache and fails the reads in flight.
func (c *cache) reset() {
	c.mu.Lock()
	c.byLookup = map[string]*licensing.Key{}
	c.byID = map[string]string{}
	c.inst = map[string]*cachedInstances{}
	c.seq += invalidationRing
	c.mu.Unlock()
}

// invalidate drops the record of key id and fails the reads of it in
// flight. An id that is no key id empties the cache.
func (c *cache) invalidate(id string) {
	if !licensing.ValidKeyID(id) {
		c.reset()
		return
	}
	c.mu.Lock()
	c.invalidateLocked(id)
	c.mu.Unlock()
}

func (c *cache) invalidateLocked(id string) {
	c.seq++
	c.ring[c.seq%invalidationRing] = id
	if lookup, ok := c.byID[id]; ok {
		delete(c.byID, id)
		delete(c.byLookup, lookup)
	}
	delete(c.inst, id)
}

// begin returns the position a read of PostgreSQL starts at, for put.
func (c *cache) begin() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.seq
}

// staleLocked reports whether key id was invalidated, or the cache
// emptied, since position start. The caller holds mu.
func (c *cache) staleLocked(start uint64, id string) bool {
	if c.seq-start >= invalidationRing {
		return true
	}
	for i := start + 1; i <= c.seq; i++ {
		if c.ring[i%invalidationRing] == id {
			return true
		}
	}
	return false
}

// key returns a copy of the record of lookup, if cached.
func (c *cache) key(lookup string) (licensing.Key, bool) {
	c.mu.RLock()
	k, ok := c.byLookup[lookup]
	c.mu.RUnlock()
	if !ok {
		return licensing.Key{}, false
	}
	return copyKey(*k), true
}

// putKey caches k, read from PostgreSQL since position start, unless it
// went stale meanwhile.
func (c *cache) putKey(start uint64, k licensing.Key) {
	k = copyKey(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staleLocked(start, k.ID) {
		return
	}
	if old, ok := c.byID[k.ID]; ok {
		delete(c.byLookup, old)
	} else if len(c.byLookup) >= c.max {
		for lookup, v := range c.byLookup { // an arbitrary one
			delete(c.byLookup, lookup)
			delete(c.byID, v.ID)
			break
		}
	}
	c.byLookup[k.LookupValue] = &k
	c.byID[k.ID] = k.LookupValue
}

// recorded applies records written to PostgreSQL to the cached keys and
// drops the pending sightings they carry. A read in flight that predates
// the write may still cache the key without it: the records' fields
// (last validated, instance, metrics) are not what validation decides by.
func (c *cache) recorded(recs []licensing.ValidationRecord) {
	c.pmu.Lock()
	for _, r := range recs {
		if r.InstanceID != "" {
			delete(c.pending, instanceKey{r.KeyID, r.InstanceID}) // written now
		}
	}
	c.pmu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		lookup, ok := c.byID[r.KeyID]
		if !ok {
			continue
		}
		k := *c.byLookup[lookup]
		r.Metrics, r.Violations = maps.Clone(r.Metrics), slices.Clone(r.Violations)
		k.ApplyValidation(r)
		c.byLookup[lookup] = &k
	}
}

// copyKey returns k with its own metrics and violations.
func copyKey(k licensing.Key) licensing.Key {
	k.LastMetrics = maps.Clone(k.LastMetrics)
	k.LastViolations = slices.Clone(k.LastViolations)
	return k
}

// invalidated drops the cached records of ids after a write through this
// Store, whatever its outcome.
func (s *Store) invalidated(ids ...string) {
	if c := s.cache.Load(); c != nil {
		c.mu.Lock()
		for _, id := range ids {
			c.invalidateLocked(id)
		}
		c.mu.Unlock()
	}
}

// cachedInstances are the instances of a key that held a seat when read,
// with the times they were last seen, later ones seen by this server
// merged in.
type cachedInstances struct {
	mu      sync.Mutex
	expires time.Time // by the local clock
	lease   time.Duration
	seen    map[string]time.Time // instance id -> last seen
}

// instanceKey names an instance of a key.
type instanceKey struct{ key, instance string }

// seated answers SeatInstance for inst from memory when the key's
// instances are cached (read less than instancesTTL ago, for the same
// lease) and inst holds a seat among them: the sighting is kept in
// pending, its last seen time moved on, and the seats held at
// inst.LastSeenAt are counted. ok is false when PostgreSQL must answer.
func (c *cache) seated(keyID string, inst licensing.Instance, lease time.Duration) (n int, ok bool) {
	c.mu.RLock()
	e := c.inst[keyID]
	c.mu.RUnlock()
	if e == nil {
		return 0, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := inst.LastSeenAt
	last, held := e.seen[inst.ID]
	if e.lease != lease || !time.Now().Before(e.expires) || !held || now.Sub(last) >= lease {
		return 0, false
	}
	if !c.keepSighting(keyID, inst) {
		return 0, false
	}
	if now.After(last) {
		e.seen[inst.ID] = now
	}
	for _, t := range e.seen {
		if now.Sub(t) < lease {
			n++
		}
	}
	return n, true
}

// keepSighting merges inst into its pending sighting; false when pending
// is full.
func (c *cache) keepSighting(keyID string, inst licensing.Instance) bool {
	ik := instanceKey{keyID, inst.ID}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	have, ok := c.pending[ik]
	if !ok && len(c.pending) >= c.max {
		return false
	}
	if !ok {
		have = licensing.Instance{ID: inst.ID}
	}
	c.pending[ik] = have.Merge(inst)
	return true
}

// takeSighting removes and returns the pending sighting of an instance.
func (c *cache) takeSighting(keyID, instanceID string) (licensing.Instance, bool) {
	ik := instanceKey{keyID, instanceID}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	have, ok := c.pending[ik]
	delete(c.pending, ik)
	return have, ok
}

// overlay applies the pending sightings of key keyID to list (sorted as
// Instances returns it) and sorts it again.
func (c *cache) overlay(keyID string, list []licensing.Instance) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if len(c.pending) == 0 {
		return
	}
	changed := false
	for i := range list {
		if p, ok := c.pending[instanceKey{keyID, list[i].ID}]; ok {
			list[i] = list[i].Merge(p)
			changed = true
		}
	}
	if changed {
		slices.SortFunc(list, func(a, b licensing.Instance) int {
			if c := b.LastSeenAt.Compare(a.LastSeenAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
	}
}

// putInstances caches the instances of key keyID that held a seat, read
// from PostgreSQL since position start, unless they went stale meanwhile.
func (c *cache) putInstances(start uint64, keyID string, list []licensing.Instance, lease time.Duration) {
	if len(list) > maxCachedInstances {
		return
	}
	ttl := instancesTTL/2 + rand.N(instancesTTL/2+1)
	e := &cachedInstances{expires: time.Now().Add(ttl), lease: lease, seen: make(map[string]time.Time, len(list))}
	for _, in := range list {
		e.seen[in.ID] = in.LastSeenAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.staleLocked(start, keyID) {
		return
	}
	if _, ok := c.inst[keyID]; !ok && len(c.inst) >= c.max {
		for id := range c.inst { // an arbitrary one
			delete(c.inst, id)
			break
		}
	}
	c.inst[keyID] = e
}

// SeatInstance implements licensing.Store. With the read cache started and
// listening, an instance that holds a seat is answered from memory (its
// update reaches PostgreSQL with the next RecordValidations, as the
// contract allows); the key's instances are read (one query) when not
// cached. A new instance, or one whose seat ran out, always goes to
// PostgreSQL, where taking a seat is one atomic step across servers.
// A PostgreSQL that does not answer within 5 seconds (validationTimeout)
// fails the call with licensing.ErrStoreUnavailable.
func (s *Store) SeatInstance(ctx context.Context, keyID string, inst licensing.Instance, limit int, lease time.Duration) (int, bool, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, validationTimeout, errNoAnswer)
	defer cancel()
	n, added, err := s.seatInstanceCached(ctx, keyID, inst, limit, lease)
	return n, added, noAnswer(ctx, err)
}

// seatInstanceCached is SeatInstance, through the read cache when started.
func (s *Store) seatInstanceCached(ctx context.Context, keyID string, inst licensing.Instance, limit int, lease time.Duration) (int, bool, error) {
	c := s.cache.Load()
	if c == nil {
		return s.seatInstance(ctx, keyID, inst, limit, lease)
	}
	if c.usable.Load() && licensing.ValidKeyID(keyID) {
		if n, ok := c.seated(keyID, inst, lease); ok {
			return n, false, nil
		}
	}
	// PostgreSQL answers: with the sighting kept in memory, if any, under
	// this one (which may lack a name, URL or metrics that one had).
	if p, ok := c.takeSighting(keyID, inst.ID); ok {
		inst = p.Merge(inst)
	}
	if !c.usable.Load() || !licensing.ValidKeyID(keyID) {
		return s.seatInstance(ctx, keyID, inst, limit, lease)
	}
	start := c.begin()
	if list, err := s.Instances(ctx, keyID, inst.LastSeenAt, lease); err == nil &&
		slices.ContainsFunc(list, func(in licensing.Instance) bool { return in.ID == inst.ID }) {
		c.putInstances(start, keyID, list, lease)
		if n, ok := c.seated(keyID, inst, lease); ok {
			return n, false, nil
		}
	}
	defer s.invalidated(keyID)
	return s.seatInstance(ctx, keyID, inst, limit, lease)
}
