package queries

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/projections"
)

// Programs lists every program ID.
func (q *Queries) Programs(ctx context.Context) ([]string, error) {
	ids, err := q.rdb.SMembers(ctx, q.keys("programs", projections.ProgramsTag).Key("programs")).Result()
	if err != nil {
		return nil, fmt.Errorf("list programs: %w", err)
	}
	return ids, nil
}

// DuePartners lists up to limit partners of a program whose next
// time-based contract transition is due at or before now.
func (q *Queries) DuePartners(ctx context.Context, program string, now time.Time, limit int) ([]string, error) {
	ids, err := q.rdb.ZRangeByScore(ctx, q.keys("partners", program).Key("due"), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("due partners of %s: %w", program, err)
	}
	return ids, nil
}
