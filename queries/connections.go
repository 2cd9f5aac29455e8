package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/projections"
)

// connections is the projection of connections and credentials.
const connections = "connections"

// GetConnection returns a live connection as raw JSON; a deleted one is
// not found.
func (q *Queries) GetConnection(ctx context.Context, program, id string) (json.RawMessage, error) {
	return q.docOf(ctx, connections, program, "conndoc", "connection", id)
}

// ListConnections pages through a program's live connections by ID.
func (q *Queries) ListConnections(ctx context.Context, program string, limit int, cursor string) (Page[json.RawMessage], error) {
	return q.docPageOf(ctx, connections, program, "conns", "conndoc", limit, cursor)
}

// GetCredential returns a live credential with the connections that use it.
func (q *Queries) GetCredential(ctx context.Context, program, id string) (json.RawMessage, error) {
	doc, err := q.docOf(ctx, connections, program, "creddoc", "credential", id)
	if err != nil {
		return nil, err
	}
	out, err := q.withUse(ctx, program, []json.RawMessage{doc})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ListCredentials pages through a program's live credentials by ID, each
// with the connections that use it ("used_by", sorted).
func (q *Queries) ListCredentials(ctx context.Context, program string, limit int, cursor string) (Page[json.RawMessage], error) {
	page, err := q.docPageOf(ctx, connections, program, "creds", "creddoc", limit, cursor)
	if err != nil {
		return page, err
	}
	page.Items, err = q.withUse(ctx, program, page.Items)
	return page, err
}

// withUse fills used_by of credential documents (one pipelined round trip).
func (q *Queries) withUse(ctx context.Context, program string, docs []json.RawMessage) ([]json.RawMessage, error) {
	if len(docs) == 0 {
		return docs, nil
	}
	views := make([]projections.CredentialView, len(docs))
	ks := q.keys(connections, program)
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(docs))
	for i, d := range docs {
		if err := json.Unmarshal(d, &views[i]); err != nil {
			return nil, fmt.Errorf("credential document: %w", err)
		}
		cmds[i] = pipe.SMembers(ctx, ks.Key("creduse", views[i].ID))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("credential use: %w", err)
	}
	out := make([]json.RawMessage, len(docs))
	for i := range views {
		views[i].UsedBy = slices.Sorted(slices.Values(cmds[i].Val()))
		if views[i].UsedBy == nil {
			views[i].UsedBy = []string{}
		}
		b, err := json.Marshal(views[i])
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
