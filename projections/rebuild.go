package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
}

// Reconciler is a projection with effects beyond its generation's keys
// (the segments membership outbox). A replay (Batch.Replay) leaves those
// effects out; Rebuild calls Reconcile once every runner writes to the new
// generation gen, to emit exactly the difference.
type Reconciler interface {
	Reconcile(ctx context.Context, rdb redis.UniversalClient, gen int64) error
}

// ErrRebuildRunning: another rebuild of the projection holds its lock.
var ErrRebuildRunning = errors.New("a rebuild of this projection is already running")

// Rebuild replays the whole log into a new generation of p while the live
// generation keeps serving and receiving events; then it switches the
// generation pointer atomically, replays the tail that arrived meanwhile
// (idempotent: the version guards skip what live runners already wrote
// there), waits until every runner has seen the switch and drops the old
// generation's keys.
func Rebuild(ctx context.Context, rdb redis.UniversalClient, log LogReader, p Projection, progress RebuildProgress) (RebuildResult, error) {
	start := time.Now()
	name := p.Name()
	lock := "pd:" + name + ":rebuilding"
	if ok, err := rdb.SetNX(ctx, lock, start.String(), 10*time.Minute).Result(); err != nil {
		return RebuildResult{}, err
	} else if !ok {
		return RebuildResult{}, ErrRebuildRunning
	}
	defer rdb.Del(context.WithoutCancel(ctx), lock)
	if err := rdb.SetNX(ctx, GenerationKey(name), 1, 0).Err(); err != nil {
		return RebuildResult{}, err
	}
	old, err := rdb.Get(ctx, GenerationKey(name)).Int64()
	if err != nil {
		return RebuildResult{}, err
	}
	seq, err := rdb.Incr(ctx, "pd:"+name+":gen:seq").Result()
	if err != nil {
		return RebuildResult{}, err
	}
	gen := max(seq, old+1)
	if gen != seq {
		rdb.Set(ctx, "pd:"+name+":gen:seq", gen, 0)
	}
	r := NewRunner(rdb, p)
	res := RebuildResult{OldGeneration: old, NewGeneration: gen}
	topics := p.Topics()
	replay := func(after eventstore.Position, until eventstore.Position) (eventstore.Position, error) {
		for after < until {
			page, err := log.ReadAll(ctx, after, 4096)
			if err != nil {
				return after, err
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
					return after, err
				}
			}
			res.Events += uint64(len(evs))
			after = page[len(page)-1].Position
			if progress != nil {
				progress(after, until, res.Events)
			}
		}
		return after, nil
	}
	head, err := log.Head(ctx)
	if err != nil {
		return res, err
	}
	pos, err := replay(0, head)
	if err != nil {
		return res, fmt.Errorf("rebuild %s: %w", name, err)
	}
	if err := rdb.Set(ctx, GenerationKey(name), gen, 0).Err(); err != nil {
		return res, fmt.Errorf("rebuild %s: switch: %w", name, err)
	}
	// Events that live runners applied to the old generation after our read
	// are in the log: replay up to the head as it is now.
	if head, err = log.Head(ctx); err == nil {
		_, err = replay(pos, head)
	}
	if err != nil {
		return res, fmt.Errorf("rebuild %s: tail: %w", name, err)
	}
	select {
	case <-time.After(3 * GenerationRefresh):
	case <-ctx.Done():
		return res, ctx.Err()
	}
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
	res.Duration = time.Since(start)
	return res, nil
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
