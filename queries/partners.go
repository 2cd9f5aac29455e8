package queries

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
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

// HistoryEntry is one event of a resource's history.
type HistoryEntry struct {
	Type          string          `json:"type"`
	Version       uint64          `json:"version"`
	Position      string          `json:"position"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Actor         string          `json:"actor"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	EventID       string          `json:"event_id"`
	Data          json.RawMessage `json:"data"`
}

type storedMeta struct {
	Actor         string `json:"actor"`
	CorrelationID string `json:"correlation_id"`
	CausationID   string `json:"causation_id"`
}

// PartnerHistory pages through a partner's events, oldest first, starting
// after resource version `after`.
func (q *Queries) PartnerHistory(ctx context.Context, program, id string, after uint64, limit int) (Page[HistoryEntry], error) {
	stream := domain.PartnerStream(program, id)
	evs, err := q.store.ReadStream(ctx, stream, after, eventstore.Forwards, limit+1)
	if err != nil {
		return Page[HistoryEntry]{}, fmt.Errorf("history of %s: %w", id, err)
	}
	if len(evs) == 0 && after == 0 {
		return Page[HistoryEntry]{}, fmt.Errorf("partner %s: %w", id, domain.ErrNotFound)
	}
	last, err := q.store.ReadStream(ctx, stream, math.MaxUint64, eventstore.Backwards, 1)
	if err != nil {
		return Page[HistoryEntry]{}, fmt.Errorf("history of %s: %w", id, err)
	}
	page := Page[HistoryEntry]{Items: []HistoryEntry{}}
	if len(last) == 1 {
		page.Total = int64(last[0].Version) + 1
	}
	if len(evs) > limit {
		evs = evs[:limit]
		next := fmt.Sprint(evs[len(evs)-1].Version + 1)
		page.NextCursor = &next
	}
	for _, e := range evs {
		var m storedMeta
		_ = json.Unmarshal(e.Metadata, &m)
		page.Items = append(page.Items, HistoryEntry{Type: e.Type, Version: e.Version + 1, Position: e.Position.String(),
			RecordedAt: e.RecordedAt.UTC(), Actor: m.Actor, CorrelationID: m.CorrelationID, CausationID: m.CausationID,
			EventID: e.ID, Data: json.RawMessage(e.Data)})
	}
	return page, nil
}

// PartnerAsOf folds a partner's events recorded at or before t.
func (q *Queries) PartnerAsOf(ctx context.Context, program, id string, t time.Time) (projections.PartnerView, error) {
	stream := domain.PartnerStream(program, id)
	var p domain.Partner
	var version uint64
	var from uint64
	for {
		evs, err := q.store.ReadStream(ctx, stream, from, eventstore.Forwards, 512)
		if err != nil {
			return projections.PartnerView{}, fmt.Errorf("partner %s as of %s: %w", id, t, err)
		}
		for _, re := range evs {
			if re.RecordedAt.After(t) {
				evs = nil
				break
			}
			ev, err := domain.DecodeStored(re.Type, re.Metadata, re.Data)
			if err != nil {
				return projections.PartnerView{}, err
			}
			p.Apply(ev)
			version = re.Version + 1
		}
		if len(evs) < 512 {
			break
		}
		from = evs[len(evs)-1].Version + 1
	}
	if !p.Exists() {
		return projections.PartnerView{}, fmt.Errorf("partner %s as of %s: %w", id, t.Format(time.RFC3339), domain.ErrNotFound)
	}
	return projections.ViewOf(p.State(), version), nil
}
