package relay

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/eventstore"
)

// RedisCheckpoints keeps the relay position in one Redis key.
type RedisCheckpoints struct {
	Client redis.UniversalClient
	Key    string // default "pd:relay:checkpoint"
}

func (c RedisCheckpoints) key() string {
	if c.Key == "" {
		return "pd:relay:checkpoint"
	}
	return c.Key
}

// Load implements Checkpoints; no key means the start of the log.
func (c RedisCheckpoints) Load(ctx context.Context) (eventstore.Position, error) {
	v, err := c.Client.Get(ctx, c.key()).Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return eventstore.Position(v), err
}

// Save implements Checkpoints.
func (c RedisCheckpoints) Save(ctx context.Context, p eventstore.Position) error {
	return c.Client.Set(ctx, c.key(), uint64(p), 0).Err()
}
