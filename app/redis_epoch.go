package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/projections"
)

// EpochKey marks a Redis that holds partnerd's read models. It is set once
// (at the first start on that Redis) and only goes away with the data: a
// Redis restarted without persistence, flushed, or failed over to an empty
// replica. Then the version guards, generation pointers, API keys and the
// relay checkpoint are gone too, and the projections would refuse every
// event that is not the first of its stream (a gap): nothing converges
// until every read model is rebuilt from the log. watchEpoch notices and
// does that by itself.
const EpochKey = "pd:epoch"

// epochCheck is how often watchEpoch looks for the epoch.
const epochCheck = time.Second

// initEpoch sets the epoch if Redis has none and remembers it.
func (a *App) initEpoch(ctx context.Context) error {
	if err := a.Redis.SetNX(ctx, EpochKey, uuid.NewString(), 0).Err(); err != nil {
		return fmt.Errorf("redis epoch: %w", err)
	}
	v, err := a.Redis.Get(ctx, EpochKey).Result()
	if err != nil {
		return fmt.Errorf("redis epoch: %w", err)
	}
	a.epoch = v
	return nil
}

// recoveringNow reports whether the read models are being rebuilt because
// Redis lost them, or are gone and about to be (the epoch is missing), or
// are still being built at start (startingUp).
func (a *App) recoveringNow(ctx context.Context) bool {
	if a.building(ctx) {
		return true
	}
	n, err := a.Redis.Exists(ctx, EpochKey).Result()
	return err == nil && n == 0
}

// building reports whether the read models are incomplete: rebuilt after
// Redis lost them, or still being built at start. Unlike recoveringNow it
// asks Redis nothing once partnerd has caught up (it runs on every query):
// a loss is noticed by watchEpoch within epochCheck.
func (a *App) building(ctx context.Context) bool {
	return a.recovering.Load() || a.startingUp(ctx)
}

// watchEpoch checks the epoch every second. When it is gone, the instance
// that sets the new one rebuilds every projection from the log (other
// instances adopt the new epoch); /readyz says not ready until it is done.
func (a *App) watchEpoch(ctx context.Context) {
	t := time.NewTicker(epochCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := a.Redis.Get(ctx, EpochKey).Result()
		switch {
		case err == nil && v == a.epoch:
			continue
		case err == nil:
			// Another instance noticed the loss first and rebuilds.
			a.Logger.Warn("Redis lost partnerd's data; another instance rebuilds the read models")
			a.epoch = v
			continue
		case !errors.Is(err, redis.Nil):
			continue // unreachable: /readyz reports it
		}
		next := uuid.NewString()
		a.recovering.Store(true) // before the epoch is back: no 401 for a key not rebuilt yet
		won, err := a.Redis.SetNX(ctx, EpochKey, next, 0).Result()
		if err != nil || !won {
			a.recovering.Store(false)
			continue
		}
		a.epoch = next
		a.Logger.Error("Redis lost partnerd's data (its epoch key is gone); rebuilding every read model from the log")
		for _, r := range a.Runners {
			name := r.Projection().Name()
			for ctx.Err() == nil {
				res, err := projections.Rebuild(ctx, a.Redis, a.Store, r.Projection(), nil)
				if err == nil {
					a.Logger.Info("read model rebuilt after Redis lost its data", "projection", name, "events", res.Events, "took", res.Duration)
					break
				}
				if ctx.Err() == nil {
					a.Logger.Warn("rebuild after Redis lost its data failed; retrying", "projection", name, "err", err)
					time.Sleep(time.Second)
				}
			}
		}
		a.recovering.Store(false)
	}
}
