package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
)

// catalog is the projection of template terms and groups.
const catalog = "catalog"

// GetTemplateTerm returns a template term (archived ones too) as raw JSON.
func (q *Queries) GetTemplateTerm(ctx context.Context, program, id string) (json.RawMessage, error) {
	return q.doc(ctx, program, "termdoc", "template term", id)
}

// ListTemplateTerms pages through a program's template terms by ID,
// archived ones included (each says whether it is).
func (q *Queries) ListTemplateTerms(ctx context.Context, program string, limit int, cursor string) (Page[json.RawMessage], error) {
	return q.docPage(ctx, program, "terms", "termdoc", limit, cursor)
}

// GetGroup returns a live group as raw JSON; a deleted one is not found.
func (q *Queries) GetGroup(ctx context.Context, program, id string) (json.RawMessage, error) {
	return q.doc(ctx, program, "groupdoc", "group", id)
}

// ListGroups pages through a program's live groups by ID.
func (q *Queries) ListGroups(ctx context.Context, program string, limit int, cursor string) (Page[json.RawMessage], error) {
	return q.docPage(ctx, program, "groups", "groupdoc", limit, cursor)
}

// PartnersOfTemplateTerm lists the partners whose open contract or
// scheduled switch uses the term, once the catalog reflects the log up to
// pos (commands.PartnerIndex).
func (q *Queries) PartnersOfTemplateTerm(ctx context.Context, program, termID string, version uint64, pos eventstore.Position) ([]string, error) {
	return q.members(ctx, program, domain.TemplateTermStream(program, termID), version, pos, "term", termID)
}

// PartnersOfGroup lists the partners in the group, once the catalog
// reflects the log up to pos (commands.PartnerIndex).
func (q *Queries) PartnersOfGroup(ctx context.Context, program, groupID string, version uint64, pos eventstore.Position) ([]string, error) {
	return q.members(ctx, program, domain.GroupStream(program, groupID), version, pos, "group", groupID)
}

// members waits until the catalog applied the log up to pos (its
// generation's log position; a generation without one, built by an older
// release and about to be rebuilt, is waited for on stream@version only),
// then reads the term's or group's partner set.
func (q *Queries) members(ctx context.Context, program, stream string, version uint64, pos eventstore.Position, kind, id string) ([]string, error) {
	kept, err := false, error(nil)
	if pos > 0 {
		kept, err = q.waitLogPos(ctx, catalog, pos)
	}
	if err == nil && !kept {
		err = q.WaitFor(ctx, program, ConsistencyToken(stream, version))
	}
	if err != nil {
		return nil, fmt.Errorf("partners of %s %s: %w", kind, id, err)
	}
	ids, err := q.rdb.SMembers(ctx, q.keys(catalog, program).Key(kind, id, "partners")).Result()
	if err != nil {
		return nil, fmt.Errorf("partners of %s %s: %w", kind, id, err)
	}
	return ids, nil
}

// waitLogPos waits until the live generation of a log-ordered projection
// has applied every event of its topics up to pos (projections.LogPosKey).
// kept is false, at once, when that generation keeps no log position.
func (q *Queries) waitLogPos(ctx context.Context, projection string, pos eventstore.Position) (kept bool, err error) {
	kept = true
	err = q.poll(ctx, func() (bool, error) {
		cur, err := q.rdb.Get(ctx, projections.LogPosKey(projection, q.gens.Generation(projection))).Uint64()
		if errors.Is(err, redis.Nil) {
			kept = false
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("log position of %s: %w", projection, err)
		}
		return eventstore.Position(cur) >= pos, nil
	})
	return kept, err
}

func (q *Queries) doc(ctx context.Context, program, prefix, what, id string) (json.RawMessage, error) {
	return q.docOf(ctx, catalog, program, prefix, what, id)
}

// docOf reads the JSON document <prefix>:<id> of a projection.
func (q *Queries) docOf(ctx context.Context, projection, program, prefix, what, id string) (json.RawMessage, error) {
	doc, err := q.rdb.HGet(ctx, q.keys(projection, program).Key(prefix, id), "doc").Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%s %s: %w", what, id, domain.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s %s: %w", what, id, err)
	}
	return json.RawMessage(doc), nil
}

// docPage pages through the IDs of a lexical zset and their docs; the
// cursor holds the last ID of the previous page, and which list it is of
// (one of another list, or not from this server, is ErrBadCursor).
func (q *Queries) docPage(ctx context.Context, program, index, prefix string, limit int, cursor string) (Page[json.RawMessage], error) {
	return q.docPageOf(ctx, catalog, program, index, prefix, limit, cursor)
}

// docPageOf is docPage over any projection's lexical index and documents.
func (q *Queries) docPageOf(ctx context.Context, projection, program, index, prefix string, limit int, cursor string) (Page[json.RawMessage], error) {
	ks := q.keys(projection, program)
	min := "-"
	if cursor != "" {
		_, after, err := parsePartnerCursor(cursor, index)
		if err != nil {
			return Page[json.RawMessage]{}, err
		}
		min = "(" + after
	}
	pipe := q.rdb.Pipeline()
	idsCmd := pipe.ZRangeByLex(ctx, ks.Key(index), &redis.ZRangeBy{Min: min, Max: "+", Count: int64(limit) + 1})
	totalCmd := pipe.ZCard(ctx, ks.Key(index))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Page[json.RawMessage]{}, fmt.Errorf("list %s: %w", index, err)
	}
	ids := idsCmd.Val()
	page := Page[json.RawMessage]{Items: []json.RawMessage{}, Total: totalCmd.Val()}
	if len(ids) > limit {
		ids = ids[:limit]
		next := partnerCursor(index, "0", ids[len(ids)-1])
		page.NextCursor = &next
	}
	if len(ids) == 0 {
		return page, nil
	}
	pipe = q.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, ks.Key(prefix, id), "doc")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Page[json.RawMessage]{}, fmt.Errorf("list %s: %w", index, err)
	}
	for _, c := range cmds {
		if c.Err() == nil {
			page.Items = append(page.Items, json.RawMessage(c.Val()))
		}
	}
	return page, nil
}
