// Package embedded is the single-machine event store: an append-only log in
// Pebble on local disk. One writer goroutine groups concurrent appends into
// one batch and one fsync (group commit); an append returns only after its
// batch is durable. Global positions are dense: 1, 2, 3, …
package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/partnerd/partnerd/eventstore"
)

// Options tunes the store. The zero value is ready to use.
type Options struct {
	// MaxBatch caps how many append requests share one commit (default 1024).
	MaxBatch int
	// NoSync skips fsync. Only for benchmarks that measure everything but the disk.
	NoSync bool
	// Now is the clock used for RecordedAt (default time.Now).
	Now func() time.Time
}

// Store is the embedded event store. It is safe for concurrent use; a data
// folder may be opened by one process at a time (Pebble holds a lock file).
type Store struct {
	db   *pebble.DB
	opts Options
	reqs chan *appendReq

	head    atomic.Uint64 // last durable position
	written uint64        // last position applied to Pebble (writer goroutine only)
	synced  chan *written // writer → syncer
	ids     *idFilter     // IDs of the ID index (writer goroutine only)

	mu       sync.Mutex
	notify   chan struct{} // closed and replaced after every commit
	versions map[string]int64

	stats    Stats
	closing  chan struct{}
	closed   chan struct{}
	closeErr error
	once     sync.Once
}

// Stats counts commits, to show how well group commit works.
type Stats struct {
	Commits atomic.Uint64 // fsyncs that made batches durable (each may cover several)
	Events  atomic.Uint64 // events in them
	Appends atomic.Uint64 // append calls served
}

type appendReq struct {
	stream   string
	expected int64
	events   []eventstore.EventData
	// unique, when set, makes this an AppendUnique request (stream,
	// expected and events are unused).
	unique []eventstore.StreamEvent
	done   chan appendResp
}

type appendResp struct {
	res      eventstore.AppendResult
	landings []eventstore.Landing
	err      error
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := pebble.Open(dir, &pebble.Options{
		Logger: quietLogger{},
		// Memtables live outside Go's heap, and a full one is kept until
		// its flush ends while the next fills: up to twice this in RSS.
		// 64 MiB made a third of partnerd's memory at 100k partners + 1M
		// activities (peak RSS 299-309 MB, 239 MB with 32 MiB) for no
		// measurable gain in append or ingest rates.
		MemTableSize: 32 << 20,
		// Bloom filters keep AppendUnique's ID lookups (mostly misses) off the disk.
		Levels: []pebble.LevelOptions{{FilterPolicy: bloom.FilterPolicy(10)}},
	})
	if err != nil {
		return nil, fmt.Errorf("open event store in %s: %w", dir, err)
	}
	s := &Store{
		db:       db,
		opts:     opts,
		reqs:     make(chan *appendReq, 4096),
		notify:   make(chan struct{}),
		versions: make(map[string]int64),
		closing:  make(chan struct{}),
		closed:   make(chan struct{}),
		synced:   make(chan *written, 64),
	}
	head, err := s.lastPosition()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.head.Store(uint64(head))
	s.written = uint64(head)
	if s.ids, err = loadIDFilter(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open event store in %s: load ID index: %w", dir, err)
	}
	go s.writeLoop()
	go s.syncLoop()
	return s, nil
}

// Stats returns the store's commit counters.
func (s *Store) Stats() *Stats { return &s.stats }

func (s *Store) lastPosition() (eventstore.Position, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: []byte{prefixLog + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	return eventstore.Position(binary.BigEndian.Uint64(it.Key()[1:])), nil
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected int64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if len(events) == 0 {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: no events", stream)
	}
	if stream == "" || strings.ContainsRune(stream, 0) {
		return eventstore.AppendResult{}, fmt.Errorf("append: invalid stream name %q", stream)
	}
	r := s.enqueue(ctx, &appendReq{stream: stream, expected: expected, events: events, done: make(chan appendResp, 1)})
	return r.res, r.err
}

// AppendUnique implements eventstore.UniqueAppender. The writer checks
// every ID against the durable ID index ('I' keys, written in the same
// batch as the events) and against the IDs of its current batch.
func (s *Store) AppendUnique(ctx context.Context, events []eventstore.StreamEvent) ([]eventstore.Landing, error) {
	if len(events) == 0 {
		return nil, nil
	}
	for _, e := range events {
		if e.Stream == "" || strings.ContainsRune(e.Stream, 0) {
			return nil, fmt.Errorf("append: invalid stream name %q", e.Stream)
		}
		if e.ID == "" {
			return nil, fmt.Errorf("append unique to %s: an event without ID", e.Stream)
		}
	}
	r := s.enqueue(ctx, &appendReq{unique: events, done: make(chan appendResp, 1)})
	return r.landings, r.err
}

func (s *Store) enqueue(ctx context.Context, req *appendReq) appendResp {
	select {
	case s.reqs <- req:
	case <-s.closing:
		return appendResp{err: eventstore.ErrClosed}
	case <-ctx.Done():
		return appendResp{err: ctx.Err()}
	}
	// Once queued, the append is committed or failed by the writer; waiting
	// for its answer even after ctx ends keeps "acknowledged = durable" true.
	select {
	case r := <-req.done:
		return r
	case <-s.closed:
		select {
		case r := <-req.done:
			return r
		default:
			return appendResp{err: eventstore.ErrClosed}
		}
	}
}

// streamVersion returns the current version of stream (-1 if none). Called by
// the writer goroutine only, except for reads which take the mutex.
func (s *Store) streamVersion(stream string) (int64, error) {
	s.mu.Lock()
	v, ok := s.versions[stream]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	lower, upper := streamBounds(stream)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	v = -1
	if it.Last() {
		k := it.Key()
		v = int64(binary.BigEndian.Uint64(k[len(k)-8:]))
	} else if err := it.Error(); err != nil {
		return 0, err
	}
	return v, nil
}

func (s *Store) writeLoop() {
	defer close(s.synced)
	for {
		var first *appendReq
		select {
		case first = <-s.reqs:
		case <-s.closing:
			s.drainClosed()
			return
		}
		batch := []*appendReq{first}
	gather:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		s.commit(batch)
	}
}

func (s *Store) drainClosed() {
	for {
		select {
		case r := <-s.reqs:
			r.done <- appendResp{err: eventstore.ErrClosed}
		default:
			return
		}
	}
}

// written is a batch the writer applied to Pebble without syncing, on
// its way to the syncer.
type written struct {
	reqs    []*appendReq
	results []appendResp
	pos     uint64 // last position in the batch (or before it, when empty)
	events  int
	err     error // the batch failed to apply: answer every accepted request with it
	accept  []bool
}

// commit checks each request's expected version (and, for AppendUnique,
// each event ID), writes the accepted ones in one batch WITHOUT syncing,
// and hands the batch to the syncer, which makes it durable (one fsync
// for every batch waiting) before answering. So the writer plans and
// applies the next batch while the disk syncs the previous ones: group
// commit that does not stall on the disk. Unsynced events are invisible
// to ReadAll and Subscribe (they stop at head, which moves after the
// sync); ReadStream may see them, which is safe because the WAL is
// sequential: nothing after them can become durable without them.
func (s *Store) commit(reqs []*appendReq) {
	b := s.db.NewBatch()
	defer b.Close()
	now := s.opts.Now().UTC()
	pos := s.written
	overlay := make(map[string]int64, len(reqs))
	w := &written{reqs: reqs, results: make([]appendResp, len(reqs)), accept: make([]bool, len(reqs))}
	results, accepted := w.results, w.accept
	nEvents := 0
	var ids map[string]uint64 // IDs appended uniquely in this batch
	version := func(stream string) (int64, error) {
		if cur, ok := overlay[stream]; ok {
			return cur, nil
		}
		return s.streamVersion(stream)
	}
	for i, r := range reqs {
		if r.unique != nil {
			if ids == nil {
				ids = map[string]uint64{}
			}
			land, n, err := s.planUnique(b, r.unique, ids, overlay, version, &pos, now)
			if err != nil {
				results[i].err = err
				continue
			}
			nEvents += n
			accepted[i] = true
			results[i].landings = land
			continue
		}
		cur, ok := overlay[r.stream]
		if !ok {
			v, err := s.streamVersion(r.stream)
			if err != nil {
				results[i].err = fmt.Errorf("append to %s: %w", r.stream, err)
				continue
			}
			cur = v
		}
		if !expectedHolds(r.expected, cur) {
			results[i].err = &eventstore.VersionError{Stream: r.stream, Expected: r.expected, Actual: cur}
			continue
		}
		for _, e := range r.events {
			cur++
			pos++
			rec := eventstore.RecordedEvent{ID: e.ID, StreamID: r.stream, Type: e.Type, Version: uint64(cur),
				Position: eventstore.Position(pos), RecordedAt: now, Data: e.Data, Metadata: e.Metadata}
			_ = b.Set(logKey(rec.Position), encodeRecord(&rec), nil)
			var pv [8]byte
			binary.BigEndian.PutUint64(pv[:], pos)
			_ = b.Set(streamKey(r.stream, uint64(cur)), pv[:], nil)
		}
		nEvents += len(r.events)
		overlay[r.stream] = cur
		accepted[i] = true
		results[i].res = eventstore.AppendResult{Version: uint64(cur), Position: eventstore.Position(pos)}
	}
	w.events = nEvents
	w.pos = s.written
	if nEvents > 0 {
		if err := b.Commit(pebble.NoSync); err != nil {
			w.err = err
		} else {
			s.written = pos
			w.pos = pos
			s.mu.Lock()
			for st, v := range overlay {
				s.versions[st] = v
			}
			s.mu.Unlock()
		}
	}
	s.synced <- w
}

// syncLoop makes written batches durable, several per fsync, and answers
// their requests in order.
func (s *Store) syncLoop() {
	defer close(s.closed)
	for w := range s.synced {
		group := []*written{w}
	gather:
		for {
			select {
			case w2, ok := <-s.synced:
				if !ok {
					break gather
				}
				group = append(group, w2)
			default:
				break gather
			}
		}
		events := 0
		for _, w := range group {
			if w.err == nil {
				events += w.events
			}
		}
		var syncErr error
		if events > 0 && !s.opts.NoSync {
			syncErr = s.db.LogData(nil, pebble.Sync)
		}
		if events > 0 && syncErr == nil {
			s.stats.Commits.Add(1)
		}
		for _, w := range group {
			err := w.err
			if err == nil {
				err = syncErr
			}
			if err != nil {
				for i := range w.reqs {
					if w.accept[i] {
						w.results[i] = appendResp{err: fmt.Errorf("append: commit: %w", err)}
					}
				}
			} else if w.events > 0 {
				s.mu.Lock()
				s.head.Store(w.pos)
				close(s.notify)
				s.notify = make(chan struct{})
				s.mu.Unlock()
				s.stats.Events.Add(uint64(w.events))
			}
			s.stats.Appends.Add(uint64(len(w.reqs)))
			for i, r := range w.reqs {
				r.done <- w.results[i]
			}
		}
	}
}

// planUnique adds the events of an AppendUnique request to batch b,
// skipping IDs already in the index or earlier in this batch. If a lookup
// fails midway, the request is answered with the error while the events
// planned before it may still be committed with the batch: they are valid
// appends, and the caller's retry drops them as duplicates.
func (s *Store) planUnique(b *pebble.Batch, evs []eventstore.StreamEvent, ids map[string]uint64, overlay map[string]int64,
	version func(string) (int64, error), pos *uint64, now time.Time) ([]eventstore.Landing, int, error) {
	known, err := s.knownIDs(evs)
	if err != nil {
		return nil, 0, err
	}
	land := make([]eventstore.Landing, len(evs))
	n := 0
	for i, e := range evs {
		if p, ok := ids[e.ID]; ok {
			land[i] = eventstore.Landing{Duplicate: true, Position: eventstore.Position(p)}
			continue
		}
		if p, ok := known[e.ID]; ok {
			land[i] = eventstore.Landing{Duplicate: true, Position: eventstore.Position(p)}
			continue
		}
		cur, err := version(e.Stream)
		if err != nil {
			return nil, 0, fmt.Errorf("append to %s: %w", e.Stream, err)
		}
		cur++
		*pos++
		rec := eventstore.RecordedEvent{ID: e.ID, StreamID: e.Stream, Type: e.Type, Version: uint64(cur),
			Position: eventstore.Position(*pos), RecordedAt: now, Data: e.Data, Metadata: e.Metadata}
		var pv [8]byte
		binary.BigEndian.PutUint64(pv[:], *pos)
		_ = b.Set(logKey(rec.Position), encodeRecord(&rec), nil)
		_ = b.Set(streamKey(e.Stream, uint64(cur)), pv[:], nil)
		_ = b.Set(idKey(nil, e.ID), pv[:], nil)
		s.ids.add(e.ID)
		overlay[e.Stream] = cur
		ids[e.ID] = *pos
		land[i] = eventstore.Landing{Position: eventstore.Position(*pos), Version: uint64(cur)}
		n++
	}
	return land, n, nil
}

// knownIDs looks the events' IDs up in the ID index with one iterator,
// in key order (each seek continues from the last: much cheaper than one
// point lookup per ID), and returns the positions of those found.
func (s *Store) knownIDs(evs []eventstore.StreamEvent) (map[string]uint64, error) {
	keys := make([]string, 0, len(evs))
	for _, e := range evs {
		if s.ids.mayContain(e.ID) {
			keys = append(keys, e.ID)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	slices.Sort(keys)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixID}, UpperBound: []byte{prefixID + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var known map[string]uint64
	var key []byte
	for i, id := range keys {
		if i > 0 && keys[i-1] == id {
			continue
		}
		key = idKey(key[:0], id)
		if !it.SeekGE(key) {
			if err := it.Error(); err != nil {
				return nil, err
			}
			break // no larger ID is indexed
		}
		if bytes.Equal(it.Key(), key) {
			if known == nil {
				known = map[string]uint64{}
			}
			known[id] = binary.BigEndian.Uint64(it.Value())
		}
	}
	return known, it.Error()
}

func expectedHolds(expected, current int64) bool {
	switch expected {
	case eventstore.Any:
		return true
	case eventstore.NoStream:
		return current == -1
	case eventstore.StreamExists:
		return current >= 0
	default:
		return expected == current
	}
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, max int) ([]eventstore.RecordedEvent, error) {
	if max <= 0 {
		return nil, nil
	}
	lower, upper := streamBounds(stream)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var ok bool
	if dir == eventstore.Forwards {
		ok = it.SeekGE(streamKey(stream, from))
	} else if from == math.MaxUint64 {
		ok = it.Last()
	} else {
		ok = it.SeekLT(streamKey(stream, from+1))
	}
	var out []eventstore.RecordedEvent
	for ; ok && len(out) < max; ok = step(it, dir) {
		pos := eventstore.Position(binary.BigEndian.Uint64(it.Value()))
		ev, err := s.get(pos)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		out = append(out, ev)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return out, it.Error()
}

func step(it *pebble.Iterator, dir eventstore.Direction) bool {
	if dir == eventstore.Forwards {
		return it.Next()
	}
	return it.Prev()
}

func (s *Store) get(pos eventstore.Position) (eventstore.RecordedEvent, error) {
	raw, closer, err := s.db.Get(logKey(pos))
	if err != nil {
		return eventstore.RecordedEvent{}, fmt.Errorf("position %d: %w", pos, err)
	}
	defer closer.Close()
	return decodeRecord(pos, raw)
}

// ReadAll implements eventstore.Store.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	head := eventstore.Position(s.head.Load())
	if max <= 0 || after >= head {
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(after + 1), UpperBound: logKey(head + 1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := make([]eventstore.RecordedEvent, 0, min(max, int(head-after)))
	for ok := it.First(); ok && len(out) < max; ok = it.Next() {
		pos := eventstore.Position(binary.BigEndian.Uint64(it.Key()[1:]))
		ev, err := decodeRecord(pos, it.Value())
		if err != nil {
			return nil, fmt.Errorf("read log at %d: %w", pos, err)
		}
		out = append(out, ev)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, it.Error()
}

// Subscribe implements eventstore.Store.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position, handle func(eventstore.RecordedEvent) error) error {
	for {
		s.mu.Lock()
		wake := s.notify
		s.mu.Unlock()
		evs, err := s.ReadAll(ctx, after, 1024)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := handle(ev); err != nil {
				return err
			}
			after = ev.Position
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return eventstore.ErrClosed
		}
	}
}

// Head implements eventstore.Store.
func (s *Store) Head(context.Context) (eventstore.Position, error) {
	return eventstore.Position(s.head.Load()), nil
}

// Close stops the writer (pending appends fail with ErrClosed) and closes Pebble.
func (s *Store) Close() error {
	s.once.Do(func() {
		close(s.closing)
		<-s.closed
		s.closeErr = s.db.Close()
	})
	if errors.Is(s.closeErr, pebble.ErrClosed) {
		return nil
	}
	return s.closeErr
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	fmt.Printf("pebble: "+format+"\n", args...)
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
