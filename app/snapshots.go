package app

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisSnapshots keeps partner snapshots in Redis, beside the read models
// (commands.Snapshots). They expire when unused: a cache, not a record.
type redisSnapshots struct{ rdb redis.UniversalClient }

const snapshotTTL = 30 * 24 * time.Hour

func snapshotKey(stream string) string { return "pd:snap:{" + stream + "}" }

func (s redisSnapshots) Get(ctx context.Context, stream string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, snapshotKey(stream)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

func (s redisSnapshots) Put(ctx context.Context, stream string, snapshot []byte) error {
	return s.rdb.Set(ctx, snapshotKey(stream), snapshot, snapshotTTL).Err()
}
