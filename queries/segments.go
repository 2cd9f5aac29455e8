package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

// segments is the projection of segments and their membership.
const segments = "segments"

// GetSegment returns a live segment as raw JSON; a deleted one is not found.
func (q *Queries) GetSegment(ctx context.Context, program, id string) (json.RawMessage, error) {
	doc, err := q.rdb.HGet(ctx, q.keys(segments, program).Key("segdoc", id), "doc").Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("segment %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get segment %s: %w", id, err)
	}
	return json.RawMessage(doc), nil
}

// ListSegments pages through a program's live segments by ID.
func (q *Queries) ListSegments(ctx context.Context, program string, limit int, cursor string) (Page[json.RawMessage], error) {
	return q.docPageOf(ctx, segments, program, "segs", "segdoc", limit, cursor)
}

// SegmentMembers pages through a segment's current members by partner ID
// (partner documents, exact total).
func (q *Queries) SegmentMembers(ctx context.Context, program, id string, limit int, cursor string) (Page[json.RawMessage], error) {
	ks := q.keys(segments, program)
	min := "-"
	if cursor != "" {
		after, err := parseIDCursor(cursor)
		if err != nil {
			return Page[json.RawMessage]{}, err
		}
		min = "(" + after
	}
	pipe := q.rdb.Pipeline()
	live := pipe.Exists(ctx, ks.Key("segdoc", id))
	idsCmd := pipe.ZRangeByLex(ctx, ks.Key("members", id), &redis.ZRangeBy{Min: min, Max: "+", Count: int64(limit) + 1})
	totalCmd := pipe.ZCard(ctx, ks.Key("members", id))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Page[json.RawMessage]{}, fmt.Errorf("members of segment %s: %w", id, err)
	}
	if live.Val() == 0 {
		return Page[json.RawMessage]{}, fmt.Errorf("segment %s: %w", id, domain.ErrNotFound)
	}
	return q.partnerPage(ctx, program, idsCmd.Val(), totalCmd.Val(), limit)
}

// SegmentMemberIDs lists every member of a segment (tests and tools).
func (q *Queries) SegmentMemberIDs(ctx context.Context, program, id string) ([]string, error) {
	return q.rdb.ZRange(ctx, q.keys(segments, program).Key("members", id), 0, -1).Result()
}

// PreviewSegment pages through the partners that conditions match now:
// the same partner facts and the same evaluator (domain.Conditions.Matcher)
// as the saved segment's membership, so a saved segment gets exactly these
// members once the projection has caught up.
func (q *Queries) PreviewSegment(ctx context.Context, program string, c domain.Conditions, limit int, cursor string) (Page[json.RawMessage], error) {
	var after string
	if cursor != "" {
		var err error
		if after, err = parseIDCursor(cursor); err != nil {
			return Page[json.RawMessage]{}, err
		}
	}
	ids, err := q.PreviewSegmentIDs(ctx, program, c)
	if err != nil {
		return Page[json.RawMessage]{}, err
	}
	total := int64(len(ids))
	from, _ := slices.BinarySearch(ids, after)
	if after != "" && from < len(ids) && ids[from] == after {
		from++
	}
	ids = ids[from:min(len(ids), from+limit+1)]
	return q.partnerPage(ctx, program, ids, total, limit)
}

// PreviewSegmentIDs lists, sorted, every partner the conditions match.
func (q *Queries) PreviewSegmentIDs(ctx context.Context, program string, c domain.Conditions) ([]string, error) {
	all, err := q.rdb.HGetAll(ctx, q.keys(segments, program).Key("facts")).Result()
	if err != nil {
		return nil, fmt.Errorf("preview segment: %w", err)
	}
	m := c.Matcher()
	var ids []string
	for id, raw := range all {
		f, err := projections.DecodePartnerFacts(raw)
		if err != nil {
			return nil, fmt.Errorf("preview segment: partner %s: %w", id, err)
		}
		if m.Match(&f) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// partnerPage renders up to limit of ids (limit+1 read, to know whether
// there is a next page) as partner documents.
func (q *Queries) partnerPage(ctx context.Context, program string, ids []string, total int64, limit int) (Page[json.RawMessage], error) {
	page := Page[json.RawMessage]{Items: []json.RawMessage{}, Total: total}
	if len(ids) > limit {
		ids = ids[:limit]
		next := idCursor(ids[len(ids)-1])
		page.NextCursor = &next
	}
	docs, err := q.PartnerDocs(ctx, program, ids)
	if err != nil {
		return Page[json.RawMessage]{}, err
	}
	if docs != nil {
		page.Items = docs
	}
	return page, nil
}
