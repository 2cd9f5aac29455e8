package projections

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
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
	start := time.Now()
	name := p.Name()
	lock, err := lockRebuild(ctx, rdb, name)
	if err != nil {
		return RebuildResult{}, err
	}
	defer lock.release()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := rdb.SetNX(ctx, GenerationKey(name), 1, 0).Err(); err != nil {
		return RebuildResult{}, err
	}
	old, err := rdb.Get(ctx, GenerationKey(name)).Int64()
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
	pipe := rdb.TxPipeline()
	pipe.Set(ctx, GenerationKey(name), gen, 0)
	pipe.Set(ctx, dropping, old, 0)
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
	select {
	case <-time.After(3 * GenerationRefresh):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.DropWait = time.Since(waited)
	if rc, ok := p.(Reconciler); ok {
		// Every runner writes to the new generation now; the replay left
		// the projection's outside effects out: bring them in line.
		if err := rc.Reconcile(ctx, rdb, gen); err != nil {
			return res, fmt.Errorf("rebuild %s: reconcile: %w", name, err)
		}
	}
	if err := DropGeneration(ctx, rdb, name, old); err != nil {
		return res, err
	}
	rdb.Del(ctx, dropping)
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
func bulkReplay(ctx context.Context, rdb redis.UniversalClient, log LogReader, p Projection, gen int64, head eventstore.Position,
	res *RebuildResult, progress RebuildProgress) (eventstore.Position, error) {
	topics := p.Topics()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu      sync.Mutex
		applied uint64
		tagMax  = map[string]eventstore.Position{}
	)
	queues := make([]chan []Event, rebuildWorkers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan []Event, 4)
		wg.Add(1)
		go func(q chan []Event) {
			defer wg.Done()
			done := func(n int, tags map[string]eventstore.Position) {
				mu.Lock()
				applied += uint64(n)
				for t, pos := range tags {
					tagMax[t] = max(tagMax[t], pos)
				}
				mu.Unlock()
			}
			if fp, ok := p.(Folder); ok {
				if err := foldWorker(ctx, rdb, p, fp.NewFold(), gen, q, done); err != nil {
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
				done(len(evs), tags)
			}
		}(queues[i])
	}
	pending := make([][]Event, rebuildWorkers)
	flush := func(i int) {
		if len(pending[i]) > 0 {
			select {
			case queues[i] <- pending[i]:
			case <-ctx.Done():
			}
			pending[i] = nil
		}
	}
	after := eventstore.Position(0)
	var readErr error
	reached := false
	for !reached && after < head && ctx.Err() == nil {
		page, err := log.ReadAll(ctx, after, rebuildReadPage)
		if err != nil {
			readErr = err
			break
		}
		if len(page) == 0 {
			break
		}
		for _, re := range page {
			if re.Position > head {
				reached = true // the rest is the tail's
				break
			}
			after = re.Position
			// Only the projection's topics: this also drops snapshot streams
			// (eventstore.IsSnapshotStream), whose topic no projection reads.
			if !slices.Contains(topics, bus.Topic(domain.Category(re.StreamID))) {
				continue
			}
			h := fnv.New32a()
			h.Write([]byte(re.StreamID))
			i := int(h.Sum32() % rebuildWorkers)
			pending[i] = append(pending[i], bus.EnvelopeOf(re))
			if len(pending[i]) >= workerBatch {
				flush(i)
			}
		}
		if progress != nil {
			mu.Lock()
			n := applied
			mu.Unlock()
			progress(after, head, n)
		}
	}
	for i := range pending {
		flush(i)
		close(queues[i])
	}
	wg.Wait()
	if readErr != nil {
		return after, readErr
	}
	if err := context.Cause(ctx); err != nil {
		return after, err
	}
	// Each tag's checkpoint, as the live runner keeps it.
	pipe := rdb.Pipeline()
	for t, pos := range tagMax {
		pipe.HSet(ctx, NewKeyspace(p.Name(), gen, t).Key("meta"), "checkpoint", pos.String())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return after, err
	}
	res.Events += applied
	if progress != nil {
		progress(after, head, res.Events)
	}
	return after, nil
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
// guards) when it holds foldStreams of them and at the end. Only for a
// generation nothing else writes yet.
func foldWorker(ctx context.Context, rdb redis.UniversalClient, p Projection, f Fold, gen int64, q <-chan []Event,
	done func(int, map[string]eventstore.Position)) error {
	folded, tags := 0, map[string]eventstore.Position{} // events folded and not written, their tags' last positions
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
		if f.Streams() >= foldStreams/rebuildWorkers {
			if err := write(); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return write()
}

// queue adds the planned writes to a pipeline as plain commands, in order.
func (w *Writes) queue(ctx context.Context, pipe redis.Pipeliner) {
	i := 0
	for o := 0; o < w.nops; o++ {
		cmd, ki, na := w.args[i].(string), w.args[i+1].(int), w.args[i+2].(int)
		i += 3
		args := make([]any, 0, 2+na)
		args = append(args, cmd, w.keys[ki-2])
		args = append(args, w.args[i:i+na]...)
		pipe.Do(ctx, args...)
		i += na
	}
}

// guardedReplay applies the log between after and until through the
// runner's guarded path (pinned to gen), for when live runners write gen too.
func guardedReplay(ctx context.Context, log LogReader, r *Runner, gen int64, after, until eventstore.Position, res *RebuildResult, progress RebuildProgress) error {
	topics := r.proj.Topics()
	for after < until {
		page, err := log.ReadAll(ctx, after, 4096)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		var evs []Event
		for _, re := range page {
			if slices.Contains(topics, bus.Topic(domain.Category(re.StreamID))) {
				evs = append(evs, bus.EnvelopeOf(re))
			}
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
		after = page[len(page)-1].Position
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
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, drop)
	case *redis.Client:
		return drop(ctx, c)
	}
	return fmt.Errorf("drop generation: unsupported Redis client %T", rdb)
}
