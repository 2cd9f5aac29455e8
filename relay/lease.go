package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/eventstore"
)

// Lease makes one relay the publisher across processes. It is a Redis key
// holding "<owner>:<fencing token>" with a TTL, renewed while held. The
// fencing token grows with every acquisition, and the checkpoint is written
// only by a Lua step that checks the lease is still ours, so a paused or
// partitioned ex-leader cannot move the checkpoint after losing the lease.
type Lease struct {
	Client redis.UniversalClient
	// Key of the lease (default "pd:relay:lease"); the fencing counter is Key+":fence".
	Key string
	// TTL of the lease (default 5 s); it is renewed every TTL/5.
	TTL    time.Duration
	Logger *slog.Logger

	owner string
	value string
}

// ErrLeaseLost: the lease expired or was taken by another process.
var ErrLeaseLost = errors.New("relay lease lost")

func (l *Lease) defaults() {
	if l.Key == "" {
		l.Key = "pd:relay:lease"
	}
	if l.TTL <= 0 {
		l.TTL = 5 * time.Second
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	if l.owner == "" {
		l.owner = uuid.NewString()
	}
}

// acquire takes the lease if it is free; it returns false when another
// process holds it.
func (l *Lease) acquire(ctx context.Context) (bool, error) {
	token, err := l.Client.Incr(ctx, l.Key+":fence").Result()
	if err != nil {
		return false, err
	}
	value := l.owner + ":" + strconv.FormatInt(token, 10)
	ok, err := l.Client.SetNX(ctx, l.Key, value, l.TTL).Result()
	if err != nil || !ok {
		return false, err
	}
	l.value = value
	return true, nil
}

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

// fencedSetScript writes the checkpoint only while the lease is ours.
var fencedSetScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Run runs the relay only while this process holds the lease: it waits for
// the lease, runs the relay with fenced checkpoints, stops it as soon as a
// renewal fails, and starts over, until ctx ends.
func (l *Lease) Run(ctx context.Context, r *Relay) error {
	l.defaults()
	cp := &fencedCheckpoints{lease: l, key: checkpointKey(r.Checkpoints)}
	r.Checkpoints = cp
	for ctx.Err() == nil {
		ok, err := l.acquire(ctx)
		if err != nil || !ok {
			if err != nil {
				l.Logger.Warn("relay lease: acquire failed", "err", err)
			}
			select {
			case <-time.After(l.TTL / 5):
			case <-ctx.Done():
			}
			continue
		}
		l.Logger.Info("relay lease acquired; publishing", "lease", l.value)
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(lctx) }()
		l.hold(lctx, cancel)
		<-done
		_ = releaseScript.Run(context.WithoutCancel(ctx), l.Client, []string{l.Key}, l.value).Err()
	}
	return nil
}

// hold renews the lease until it is lost or ctx ends, then cancels.
func (l *Lease) hold(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	t := time.NewTicker(l.TTL / 5)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, rcancel := context.WithTimeout(ctx, l.TTL/2)
			n, err := renewScript.Run(rctx, l.Client, []string{l.Key}, l.value, l.TTL.Milliseconds()).Int()
			rcancel()
			if err != nil || n != 1 {
				l.Logger.Warn("relay lease lost; stopping the relay", "err", err)
				return
			}
		}
	}
}

// Holder returns who holds the lease now ("" when free).
func (l *Lease) Holder(ctx context.Context) (string, error) {
	l.defaults()
	v, err := l.Client.Get(ctx, l.Key).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

type fencedCheckpoints struct {
	lease *Lease
	key   string
}

func (f *fencedCheckpoints) Load(ctx context.Context) (eventstore.Position, error) {
	return RedisCheckpoints{Client: f.lease.Client, Key: f.key}.Load(ctx)
}

func (f *fencedCheckpoints) Save(ctx context.Context, p eventstore.Position) error {
	n, err := fencedSetScript.Run(ctx, f.lease.Client, []string{f.lease.Key, f.key}, f.lease.value, uint64(p)).Int()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("checkpoint %d: %w", p, ErrLeaseLost)
	}
	return nil
}

func checkpointKey(c Checkpoints) string {
	if rc, ok := c.(RedisCheckpoints); ok {
		return rc.key()
	}
	return RedisCheckpoints{}.key()
}
