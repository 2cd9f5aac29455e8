package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
)

// Page is one page of a list.
type Page[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
	Total      int64   `json:"total"`
}

// GetPartner returns a partner's read model as raw JSON.
func (q *Queries) GetPartner(ctx context.Context, program, id string) (json.RawMessage, error) {
	doc, err := q.rdb.HGet(ctx, q.keys("partners", program).Key("partner", id), "doc").Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("partner %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get partner %s: %w", id, err)
	}
	return json.RawMessage(doc), nil
}
