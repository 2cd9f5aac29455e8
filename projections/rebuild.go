package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
)

// LogReader is what a rebuild needs of the event log.
type LogReader interface {
	ReadAll(ctx context.Context, after eventstore.Position, max int) ([]eventstore.RecordedEvent, error)
	Head(ctx context.Context) (eventstore.Position, error)
}

// RebuildProgress reports a rebuild's progress: log positions read so far
// and the head it is heading for.
type RebuildProgress func(done, total eventstore.Position, applied uint64)

// RebuildResult summarises a finished rebuild.
type RebuildResult struct {
	OldGeneration, NewGeneration int64
	Events                       uint64 // events applied to the new generation
	Duration                     time.Duration
	// DropWait is the part of Duration spent waiting for runners to see
	// the switch before the old generation is dropped.
	DropWait time.Duration
}

// Reconciler is a projection with effects beyond its generation's keys
// (the segments membership outbox). A replay (Batch.Replay) leaves those
// effects out; Rebuild calls Reconcile once every runner writes to the new
// generation gen, to emit exactly the difference.
type Reconciler interface {
	Reconcile(ctx context.Context, rdb redis.UniversalClient, gen int64) error
}

// Folder is a projection whose read model of a stream depends only on
// that stream's events, and whose Plan writes, for a batch, each stream's
// state as of its last event there. A rebuild then folds the streams'
// events in memory across the whole log (up to a bound) and writes each
// stream once, instead of planning and writing batch after batch.
type Folder interface {
	NewFold() Fold
	// Categories lists the stream categories it folds.
	Categories() []string
}

// Fold accumulates events (each stream's in order) of one rebuild worker.
type Fold interface {
	// Add folds one event.
	Add(e Event) error
	// Streams is how many streams the fold holds.
	Streams() int
	// Plan appends to b the writes that bring up to max of the streams
	// folded so far to their folded state, as Plan would for a batch of
	// their events, and forgets them. It reports whether any remain.
	Plan(ctx context.Context, rd redis.Cmdable, b *Batch, max int) (bool, error)
}

// ErrRebuildRunning: another rebuild of the projection holds its lock.
var ErrRebuildRunning = errors.New("a rebuild of this projection is already running")

// Rebuild tuning. The lock expires unless renewed, so a rebuild killed
// mid-way blocks the next one for seconds, not minutes.
const (
	rebuildLockTTL     = 15 * time.Second
	rebuildReadPage    = 8192
	rebuildWorkers     = 4
	rebuildWorkerBatch = 2048
	// A Folder's workers write their streams when they hold this many
	// together (and at the end of the log): the bound on the rebuild's
	// memory. Measured on the 1M-event bench log (250k partners): each
	// partner held costs ~3.7 KB of RSS (~1 KB live, plus garbage-collector
	// headroom and write buffers), so 64k partners add ~240 MB at most
	// (131k: +480 MB, 24.4k events/s; 64k: 20.6k events/s). A program of
	// up to this many partners is folded whole; streams with events after
	// a write start again from the state written (one read each).
	rebuildFoldStreams = 1 << 16
	// How many folded streams one pipeline writes.
	rebuildFoldWrite = 2048
)

// foldStreams and workerBatch are rebuildFoldStreams and
// rebuildWorkerBatch, variables so tests can make workers write (and
// forget) their streams mid-log.
var foldStreams, workerBatch = rebuildFoldStreams, rebuildWorkerBatch

// Rebuild replays the whole log into a new generation of p while the live
// generation keeps serving and receiving events; then it switches the
// generation pointer atomically, replays the tail that arrived meanwhile
// (idempotent: the version guards skip what live runners already wrote
// there), waits until every runner has seen the switch and drops the old
// generation's keys.
//
// Until the switch nothing but this rebuild writes the new generation, and
// the log holds every stream's events once, in order, without gaps; so the
// main replay needs no guard checks and no Lua: each of a few workers owns
// the streams that hash to it (a stream's events stay in order, as on a
// bus partition), plans large batches and writes them with plain
// pipelined commands, setting the guards in bulk. A Folder's workers go
// further: they fold their streams' events in memory across the log and
// write each stream once (see foldWorker). A rebuild that dies
// before the switch leaves a generation nobody reads; the next rebuild
// drops it.
func Rebuild(ctx context.Context, rdb redis.UniversalClient, log LogReader, p Projection, progress RebuildProgress) (RebuildResult, error) {
	return rebuild(ctx, rdb, log, p, progress, false)
}

// RebuildAlone is Rebuild for a Redis that no other process uses (the
// embedded one): no runner elsewhere can still be writing the old
// generation after the switch, so it drops it without waiting for them
// (3 × GenerationRefresh) — a start rebuilds every read model this way.
// The caller's own runners must not be applying events meanwhile.
func RebuildAlone(ctx context.Context, rdb redis.UniversalClient, log LogReader, p Projection, progress RebuildProgress) (RebuildResult, error) {
	return rebuild(ctx, rdb, log, p, progress, true)
}

func rebuild(ctx context.Context, rdb redis.UniversalClient, log LogReader, p Projection, progress RebuildProgress, alone bool) (RebuildResult, error) {
	start := time.Now()
	name := p.Name()
	lock, err := lockRebuild(ctx, rdb, name)
	if err != nil {
		return RebuildResult{}, err
	}
	defer lock.release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// No generation pointer: Redis lost its data (or never had this
	// projection). None is created before the switch: live runners wait
	// (ErrNoGeneration) instead of applying the redelivered log from
	// scratch into an empty generation, which would announce its whole
	// history again (segment memberships), and the rebuild then has no
	// old generation to wait for or drop.
	old, err := rdb.Get(ctx, GenerationKey(name)).Int64()
	if errors.Is(err, redis.Nil) {
		old, err = 0, nil
	}
	if err != nil {
		return RebuildResult{}, err
	}
	// A rebuild that died left the generation it was building (before its
	// switch) or the one it was about to drop (after): drop them now.
	building, dropping := "pd:"+name+":building", "pd:"+name+":dropping"
	for _, k := range []string{building, dropping} {
		if prev, err := rdb.Get(ctx, k).Int64(); err == nil && prev != old {
			if err := DropGeneration(ctx, rdb, name, prev); err != nil {
				return RebuildResult{}, fmt.Errorf("rebuild %s: drop generation %d a failed rebuild left: %w", name, prev, err)
			}
		}
		rdb.Del(ctx, k)
	}
	seq, err := rdb.Incr(ctx, "pd:"+name+":gen:seq").Result()
	if err != nil {
		return RebuildResult{}, err
	}
	gen := max(seq, old+1)
	if gen != seq {
		rdb.Set(ctx, "pd:"+name+":gen:seq", gen, 0)
	}
	if err := rdb.Set(ctx, building, gen, 0).Err(); err != nil {
		return RebuildResult{}, err
	}
	// A sequence at or behind the live generation started over: Redis lost
	// its data, and the number may be the one live runners wrote into
	// before. A batch in flight at the loss (later ones wait,
	// ErrNoGeneration) may have left keys there, which a replay into it
	// would keep (stale index members): clear it first.
	if seq <= old || old == 0 {
		if err := DropGeneration(ctx, rdb, name, gen); err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild %s: clear generation %d: %w", name, gen, err)
		}
	}
	if l := LayoutOf(p); l > 1 {
		if err := rdb.Set(ctx, LayoutKey(name, gen), l, 0).Err(); err != nil {
			return RebuildResult{}, err
		}
	}
	res := RebuildResult{OldGeneration: old, NewGeneration: gen}
	head, err := log.Head(ctx)
	if err != nil {
		return res, err
	}
	var pos eventstore.Position
	if sq, ok := p.(Sequential); ok && sq.Sequential() {
		// Its batches depend on other streams' state and must be planned
		// one at a time in log order, with its checks and outbox ops: the
		// guarded path, pinned to the new generation (a replay).
		pos, err = head, guardedReplay(ctx, log, NewRunner(rdb, p), gen, 0, head, &res, progress)
	} else {
		pos, err = bulkReplay(ctx, rdb, log, p, gen, head, &res, progress)
	}
	if err != nil {
		return res, fmt.Errorf("rebuild %s: %w", name, err)
	}
	if !lock.held(ctx) {
		return res, fmt.Errorf("rebuild %s: lost the rebuild lock before the switch (stalled longer than %s?)", name, rebuildLockTTL)
	}
	if IsLogOrdered(p) {
		// Live runners go on from here, in log order, once they see the
		// switch (the tail replay below covers the same ground). Set
		// first: nobody reads it before the switch.
		if err := rdb.Set(ctx, LogPosKey(name, gen), uint64(pos), 0).Err(); err != nil {
			return res, fmt.Errorf("rebuild %s: log position: %w", name, err)
		}
	}
	pipe := rdb.TxPipeline()
	pipe.Set(ctx, GenerationKey(name), gen, 0)
	if old > 0 {
		pipe.Set(ctx, dropping, old, 0)
	}
	pipe.Del(ctx, building)
	if _, err := pipe.Exec(ctx); err != nil {
		return res, fmt.Errorf("rebuild %s: switch: %w", name, err)
	}
	// Events that live runners applied to the old generation after our read
	// are in the log: replay up to the head as it is now, through the
	// guarded path, since live runners now write here too.
	if head, err = log.Head(ctx); err == nil {
		err = guardedReplay(ctx, log, NewRunner(rdb, p), gen, pos, head, &res, progress)
	}
	if err != nil {
		return res, fmt.Errorf("rebuild %s: tail: %w", name, err)
	}
	waited := time.Now()
	if !alone && old > 0 {
		select {
		case <-time.After(3 * GenerationRefresh):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.DropWait = time.Since(waited)
	if rc, ok := p.(Reconciler); ok {
		// Every runner writes to the new generation now; the replay left
		// the projection's outside effects out: bring them in line.
		if err := rc.Reconcile(ctx, rdb, gen); err != nil {
			return res, fmt.Errorf("rebuild %s: reconcile: %w", name, err)
		}
	}
	if old > 0 {
		if err := DropGeneration(ctx, rdb, name, old); err != nil {
			return res, err
		}
		rdb.Del(ctx, dropping)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// rebuildLock is a projection's rebuild lock, renewed while held. It
// expires unless renewed, so a rebuild killed mid-way blocks the next one
// for seconds, not minutes.
type rebuildLock struct {
	rdb   redis.UniversalClient
	key   string
	token string
	stop  chan struct{}
	done  chan struct{}
}

// renewScript extends the lock only if it is still ours.
var renewScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`)

// releaseScript deletes the lock only if it is still ours.
var releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

func lockRebuild(ctx context.Context, rdb redis.UniversalClient, name string) (*rebuildLock, error) {
	l := &rebuildLock{rdb: rdb, key: "pd:" + name + ":rebuilding", token: strconv.FormatInt(time.Now().UnixNano(), 36),
		stop: make(chan struct{}), done: make(chan struct{})}
	ok, err := rdb.SetNX(ctx, l.key, l.token, rebuildLockTTL).Result()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrRebuildRunning
	}
	go func() {
		defer close(l.done)
		t := time.NewTicker(rebuildLockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				renewScript.Run(context.WithoutCancel(ctx), rdb, []string{l.key}, l.token, rebuildLockTTL.Milliseconds())
			}
		}
	}()
	return l, nil
}

func (l *rebuildLock) held(ctx context.Context) bool {
	v, err := l.rdb.Get(ctx, l.key).Result()
	return err == nil && v == l.token
}

func (l *rebuildLock) release() {
	close(l.stop)
	<-l.done
	releaseScript.Run(context.Background(), l.rdb, []string{l.key}, l.token)
}

// bulkReplay applies the log up to head into the fresh generation gen and
// returns the position it reached.
//
// A Folder over a log that reads filtered (eventstore.FilteredReader)
// folds every stream whole, however many there are: the streams are split
// by hash into as many slices as it takes for one slice to fit the fold's
// bound; the log is read once (other projections' events skipped
// undecoded), the first slice folded from it and the later slices' events
// spilled to temporary files, each then read back in turn (see spill). So
// every stream is written once and never read back, in memory bounded by
// foldStreams, and reading costs one pass whatever the number of slices.
// While one slice's streams are written, the next slice is read and
// folded (Redis and the fold work at the same time), so a slice is sized
// to hold under half the bound.
func bulkReplay(ctx context.Context, rdb redis.UniversalClient, log LogReader, p Projection, gen int64, head eventstore.Position,
	res *RebuildResult, progress RebuildProgress) (eventstore.Position, error) {
	ours := ownStreams(p)
	read := func(ctx context.Context, after eventstore.Position, _ int) ([]eventstore.RecordedEvent, eventstore.Position, error) {
		page, err := log.ReadAll(ctx, after, rebuildReadPage)
		if len(page) > 0 {
			after = page[len(page)-1].Position
		}
		return page, after, err
	}
	nSlices := 1
	fp, folds := p.(Folder)
	if fr, ok := log.(eventstore.FilteredReader); ok && folds {
		streams := 0
		for _, c := range fp.Categories() {
			n, err := fr.CountStreams(ctx, c+"-")
			if err != nil {
				return 0, fmt.Errorf("count streams: %w", err)
			}
			streams += n
		}
		// Two slices at a time, each 45 % of the bound (the hash splits
		// streams only about evenly).
		per := max(1, foldStreams*9/20)
		nSlices = max(1, (streams+per-1)/per)
		// The projection's events, tested by category (without building
		// a topic name per record); other records are not decoded.
		cats := fp.Categories()
		read = func(ctx context.Context, after eventstore.Position, _ int) ([]eventstore.RecordedEvent, eventstore.Position, error) {
			return fr.ReadAllFiltered(ctx, after, rebuildReadPage, func(stream string) bool {
				return slices.Contains(cats, domain.Category(stream))
			})
		}
	}
	var sp *spill
	if nSlices > 1 {
		// The first slice's read of the log spills the later slices'
		// events, which are then read from their files: the log is read
		// once, not once per slice.
		var err error
		if sp, err = newSpill(nSlices - 1); err != nil {
			return 0, err
		}
		defer sp.remove()
		whole := read
		read = func(ctx context.Context, after eventstore.Position, _ int) ([]eventstore.RecordedEvent, eventstore.Position, error) {
			page, last, err := whole(ctx, after, 0)
			out := page[:0]
			for _, re := range page {
				if s := int(streamHash(re.StreamID) % uint32(nSlices)); s == 0 {
					out = append(out, re)
				} else if re.Position <= head {
					if err := sp.write(s, re); err != nil {
						return nil, 0, err
					}
				}
			}
			return out, last, err
		}
	}
	st := &replayState{tagMax: map[string]eventstore.Position{}}
	var after eventstore.Position
	var held atomic.Int64 // streams the folds of every slice hold together
	writing := func() error { return nil }
	for slice := range nSlices {
		var report func(eventstore.Position)
		if progress != nil {
			// Each slice reads its events from the start of the log to
			// its head (the first from the log, the others from their
			// spill files): report the share of all reads done.
			report = func(at eventstore.Position) {
				done := (uint64(slice)*uint64(head) + uint64(at)) / uint64(nSlices)
				progress(eventstore.Position(done), head, st.events())
			}
		}
		rd := func(ctx context.Context, after eventstore.Position) ([]eventstore.RecordedEvent, eventstore.Position, error) {
			return read(ctx, after, slice)
		}
		if slice > 0 {
			rd = sp.reader(slice, rebuildReadPage, head)
		}
		var wait func() error
		after, wait = replaySlice(ctx, rdb, p, gen, head, uint32(nSlices), rd, ours, &held, st, report)
		if slice == 0 && sp != nil {
			if err := sp.finish(); err != nil {
				_ = wait()
				return after, err
			}
		}
		// This slice is read and being written: the previous one must be
		// written before the next is read.
		if err := writing(); err != nil {
			_ = wait()
			return after, err
		}
		writing = wait
	}
	if err := writing(); err != nil {
		return after, err
	}
	// Each tag's checkpoint, as the live runner keeps it.
	pipe := rdb.Pipeline()
	for t, pos := range st.tagMax {
		pipe.HSet(ctx, NewKeyspace(p.Name(), gen, t).Key("meta"), "checkpoint", pos.String())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return after, err
	}
	res.Events += st.applied
	if progress != nil {
		progress(after, head, res.Events)
	}
	return after, nil
}

// replayState is what a bulk replay's workers have done so far.
type replayState struct {
	mu      sync.Mutex
	applied uint64
	tagMax  map[string]eventstore.Position
}

func (st *replayState) done(n int, tags map[string]eventstore.Position) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.applied += uint64(n)
	for t, pos := range tags {
		st.tagMax[t] = max(st.tagMax[t], pos)
	}
}

func (st *replayState) events() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.applied
}

// streamHash splits streams into rebuild slices and workers.
// It is 32-bit FNV-1a, inlined to spare the allocations of hash/fnv.
func streamHash(stream string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(stream); i++ {
		h ^= uint32(stream[i])
		h *= 16777619
	}
	return h
}

// replaySlice reads the log up to head through read and hands each of the
// projection's events to the worker that owns its stream (a stream's
// events stay in order, as on a bus partition). It returns the position
// reached once the read is done, and wait, which returns once every worker
// has written what it was given (and the first error of the read or the
// writes). nSlices is how many slices the streams are split into (workers
// split a slice further); held counts the streams folds hold.
func replaySlice(ctx context.Context, rdb redis.UniversalClient, p Projection, gen int64, head eventstore.Position, nSlices uint32,
	read func(context.Context, eventstore.Position) ([]eventstore.RecordedEvent, eventstore.Position, error),
	ours func(string) bool, held *atomic.Int64, st *replayState, report func(eventstore.Position)) (eventstore.Position, func() error) {
	ctx, cancel := context.WithCancelCause(ctx)
	queues := make([]chan []Event, rebuildWorkers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan []Event, 4)
		wg.Add(1)
		go func(q chan []Event) {
			defer wg.Done()
			if fp, ok := p.(Folder); ok {
				if err := foldWorker(ctx, rdb, p, fp.NewFold(), gen, q, held, st.done); err != nil {
					cancel(err)
				}
				for range q {
				}
				return
			}
			for evs := range q {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := applyFresh(ctx, rdb, p, gen, evs); err != nil {
					cancel(err)
					continue
				}
				tags := map[string]eventstore.Position{}
				for _, e := range evs {
					t := p.Tag(e)
					tags[t] = max(tags[t], e.Position)
				}
				st.done(len(evs), tags)
			}
		}(queues[i])
	}
	pending := make([][]Event, rebuildWorkers)
	for i := range pending {
		pending[i] = make([]Event, 0, workerBatch)
	}
	flush := func(i int) {
		if len(pending[i]) > 0 {
			select {
			case queues[i] <- pending[i]:
			case <-ctx.Done():
			}
			pending[i] = make([]Event, 0, workerBatch) // the worker owns the old one now
		}
	}
	after := eventstore.Position(0)
	var readErr error
	reached := false
	for !reached && after < head && ctx.Err() == nil {
		page, last, err := read(ctx, after)
		if err != nil {
			readErr = err
			break
		}
		if last <= after {
			break
		}
		for _, re := range page {
			if re.Position > head {
				reached = true // the rest is the tail's
				break
			}
			// Only the projection's topics: this also drops snapshot streams
			// (eventstore.IsSnapshotStream), whose topic no projection reads.
			if !ours(re.StreamID) {
				continue
			}
			i := int(streamHash(re.StreamID) / nSlices % rebuildWorkers)
			pending[i] = append(pending[i], bus.EnvelopeOf(re))
			if len(pending[i]) >= workerBatch {
				flush(i)
			}
		}
		after = min(last, head)
		if report != nil {
			report(after)
		}
	}
	for i := range pending {
		flush(i)
		close(queues[i])
	}
	if readErr != nil {
		cancel(readErr)
	}
	return after, func() error {
		wg.Wait()
		err := context.Cause(ctx)
		cancel(nil)
		return err
	}
}

// applyFresh plans one batch of a worker's streams and writes it with
// plain pipelined commands, setting each stream's guard to its last
// version. Only for a generation nothing else writes yet.
func applyFresh(ctx context.Context, rdb redis.UniversalClient, p Projection, gen int64, evs []Event) error {
	b := &Batch{Gen: gen, Replay: true, name: p.Name(), Events: evs, writes: map[string]*Writes{}}
	if err := p.Plan(ctx, rdb, b); err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	guards := map[string][]any{}
	for _, e := range evs {
		t := p.Tag(e)
		guards[t] = append(guards[t], e.Stream, strconv.FormatUint(e.Version, 10)) // later versions overwrite earlier ones
	}
	pipe := rdb.Pipeline()
	for _, w := range b.writes {
		w.queue(ctx, pipe)
	}
	for t, fv := range guards {
		pipe.HSet(ctx, NewKeyspace(p.Name(), gen, t).Guard(), fv...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// foldWorker folds a worker's events, writing its streams (with their
// guards) when the workers' folds hold foldStreams streams together (held
// counts them) and at the end. Only for a generation nothing else writes
// yet.
func foldWorker(ctx context.Context, rdb redis.UniversalClient, p Projection, f Fold, gen int64, q <-chan []Event, held *atomic.Int64,
	done func(int, map[string]eventstore.Position)) error {
	folded, tags := 0, map[string]eventstore.Position{} // events folded and not written, their tags' last positions
	mine := 0                                           // this fold's share of held
	guards := map[string]map[string]uint64{}
	// Each pipeline's writes reuse the memory of the previous one's.
	writes := map[string]*Writes{}
	write := func() error {
		for more := f.Streams() > 0; more; {
			for _, w := range writes {
				w.reset()
			}
			b := &Batch{Gen: gen, Replay: true, name: p.Name(), writes: writes}
			var err error
			if more, err = f.Plan(ctx, rdb, b, rebuildFoldWrite); err != nil {
				return fmt.Errorf("plan: %w", err)
			}
			pipe := rdb.Pipeline()
			for _, w := range b.writes {
				if w.nops > 0 {
					w.queue(ctx, pipe)
				}
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("write: %w", err)
			}
		}
		pipe := rdb.Pipeline()
		for t, vs := range guards {
			var fv []any // 1024 guards an HSET
			for s, v := range vs {
				fv = append(fv, s, strconv.FormatUint(v, 10))
				if len(fv) == 2048 {
					pipe.HSet(ctx, NewKeyspace(p.Name(), gen, t).Guard(), fv...)
					fv = nil
				}
			}
			if len(fv) > 0 {
				pipe.HSet(ctx, NewKeyspace(p.Name(), gen, t).Guard(), fv...)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("write guards: %w", err)
		}
		clear(guards)
		done(folded, tags)
		folded, tags = 0, map[string]eventstore.Position{}
		return nil
	}
	for evs := range q {
		if ctx.Err() != nil {
			return nil
		}
		for _, e := range evs {
			if err := f.Add(e); err != nil {
				return fmt.Errorf("fold: %w", err)
			}
			t := p.Tag(e)
			g := guards[t]
			if g == nil {
				g = map[string]uint64{}
				guards[t] = g
			}
			g[e.Stream] = e.Version
			tags[t] = max(tags[t], e.Position)
			folded++
		}
		n := f.Streams()
		total := held.Add(int64(n - mine))
		if mine = n; total >= int64(foldStreams) {
			held.Add(-int64(mine))
			mine = 0
			if err := write(); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	held.Add(-int64(mine))
	return write()
}

// queue adds the planned writes to a pipeline as plain commands, in order.
// Only for a generation nothing else writes: an n-gram set's registry
// entry is added with its members without asking whether the set was
// empty (one ZADD per registry for the whole batch); a removal (rare: a
// rebuild folds partners whole) runs as a small script that drops the
// entry of a set it empties.
func (w *Writes) queue(ctx context.Context, pipe redis.Pipeliner) {
	var registry map[string][]any // registry key → score, gram, …
	i := 0
	for o := 0; o < w.nops; o++ {
		cmd, ki, na := w.args[i].(string), w.args[i+1].(int), w.args[i+2].(int)
		i += 3
		key, a := w.keys[ki-2], w.args[i:i+na]
		i += na
		switch cmd {
		case "PD_GRAMADD", "PD_GRAMREG":
			if registry == nil {
				registry = map[string][]any{}
			}
			reg := w.keys[a[0].(int)-2]
			registry[reg] = append(registry[reg], 0, a[1])
			cmd, a = "SADD", a[2:]
		case "PD_GRAMREM":
			pipe.Eval(ctx, gramRemScript, []string{key, w.keys[a[0].(int)-2]}, a[1:]...)
			continue
		}
		args := make([]any, 0, 2+len(a))
		args = append(args, cmd, key)
		args = append(args, a...)
		pipe.Do(ctx, args...)
	}
	for reg, members := range registry {
		pipe.Do(ctx, append([]any{"ZADD", reg}, members...)...)
	}
}

// gramRemScript is PD_GRAMREM outside the apply step: KEYS[1] the n-gram
// set, KEYS[2] the registry, ARGV[1] the gram, ARGV[2…] the members.
const gramRemScript = `
local removed = redis.call('SREM', KEYS[1], unpack(ARGV, 2))
if removed > 0 and redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
return removed
`

// guardedReplay applies the log between after and until through the
// runner's guarded path (pinned to gen), for when live runners write gen too.
func guardedReplay(ctx context.Context, log LogReader, r *Runner, gen int64, after, until eventstore.Position, res *RebuildResult, progress RebuildProgress) error {
	for after < until {
		evs, examined, err := readOwnEvents(ctx, log, r.proj, after, 4096)
		if err != nil {
			return err
		}
		if examined <= after {
			break
		}
		for i := 0; i < len(evs); i += 1024 {
			deferred, err := r.apply(ctx, evs[i:min(i+1024, len(evs))], gen)
			if err == nil && len(deferred) > 0 {
				err = fmt.Errorf("%d events out of order in the log: %w", len(deferred), ErrGap)
			}
			if err != nil {
				return err
			}
		}
		res.Events += uint64(len(evs))
		after = examined
		if progress != nil {
			progress(after, until, res.Events)
		}
	}
	return nil
}

// DropGeneration deletes every key of one generation of a projection.
func DropGeneration(ctx context.Context, rdb redis.UniversalClient, name string, gen int64) error {
	match := "pd:" + name + ":g" + strconv.FormatInt(gen, 10) + ":*"
	drop := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, match, 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				if err := c.Unlink(ctx, batch...).Err(); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if err := eachNode(ctx, rdb, drop); err != nil {
		return fmt.Errorf("drop generation: %w", err)
	}
	return nil
}

// eachNode runs fn on the Redis server, or on every master of a cluster
// (at the same time: fn must be safe for that).
func eachNode(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, c)
	}
	return fmt.Errorf("unsupported Redis client %T", rdb)
}

// scanKeys returns every key matching match, from every node.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, match string) ([]string, error) {
	var mu sync.Mutex
	var keys []string
	err := eachNode(ctx, rdb, func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, match, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	})
	return keys, err
}
