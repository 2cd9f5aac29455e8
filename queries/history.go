package queries

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
)

// HistoryEntry is one event of a resource's history.
type HistoryEntry struct {
	Type       string    `json:"type"`
	Version    uint64    `json:"version"`
	Position   string    `json:"position"`
	RecordedAt time.Time `json:"recorded_at"`
	// OccurredAt is when the event took effect (see commands.EventMeta;
	// absent on events written before partnerd recorded it); as_of folds by it.
	OccurredAt    *time.Time `json:"occurred_at,omitempty"`
	Actor         string     `json:"actor"`
	CorrelationID string     `json:"correlation_id,omitempty"`
	CausationID   string     `json:"causation_id,omitempty"`
	// IdempotencyKey is the Idempotency-Key of the request that made the
	// event, with its body's fingerprint (see EVENTS.md).
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	EventID        string          `json:"event_id"`
	Data           json.RawMessage `json:"data"`
}

type storedMeta struct {
	Actor          string    `json:"actor"`
	CorrelationID  string    `json:"correlation_id"`
	CausationID    string    `json:"causation_id"`
	IdempotencyKey string    `json:"idempotency_key"`
	OccurredAt     time.Time `json:"occurred_at"`
}

// historyEntry is a stored event as a history shows it.
func historyEntry(e eventstore.RecordedEvent) HistoryEntry {
	var m storedMeta
	_ = json.Unmarshal(e.Metadata, &m)
	var occurred *time.Time
	if at := tookEffect(e, m); !at.IsZero() {
		t := at.UTC()
		occurred = &t
	}
	return HistoryEntry{Type: e.Type, Version: e.Version + 1, Position: e.Position.String(), RecordedAt: e.RecordedAt.UTC(),
		OccurredAt: occurred, Actor: m.Actor, CorrelationID: m.CorrelationID, CausationID: m.CausationID,
		IdempotencyKey: m.IdempotencyKey, EventID: e.ID, Data: json.RawMessage(e.Data)}
}

// HistoryFilter narrows a history. Zero fields do not filter. Since and
// Until compare when each event took effect (occurred_at, else
// recorded_at), the moment as_of folds by: the events a history between
// two times lists are those that turn the state as of the first into the
// state as of the second. A scheduled move appended late by the scheduler
// counts at its due time.
type HistoryFilter struct {
	Types []string  // any of these event types
	Since time.Time // took effect at or after
	Until time.Time // took effect before
}

func (f HistoryFilter) empty() bool {
	return len(f.Types) == 0 && f.Since.IsZero() && f.Until.IsZero()
}

func (f HistoryFilter) match(e eventstore.RecordedEvent) bool {
	if len(f.Types) > 0 && !slices.Contains(f.Types, e.Type) {
		return false
	}
	if f.Since.IsZero() && f.Until.IsZero() {
		return true
	}
	at := occurredAt(e)
	if !f.Since.IsZero() && at.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !at.Before(f.Until) {
		return false
	}
	return true
}

const historyReadPage = 512

// History pages through the events of one resource's stream, oldest
// first, starting after resource version `after`: every aggregate's
// history is its stream `<category>-<program>-<id>`, so any category has
// one (see httpapi's history routes). A resource with no events at all is
// not found; a filter matching nothing is an empty page. With a filter,
// total counts the matching events (the whole stream is read: streams are
// one aggregate's, and history is an audit tool, not a hot path).
func (q *Queries) History(ctx context.Context, category, program, id string, after uint64, limit int, f HistoryFilter) (Page[HistoryEntry], error) {
	stream := category + "-" + program + "-" + id
	page := Page[HistoryEntry]{Items: []HistoryEntry{}}
	last, err := q.store.ReadStream(ctx, stream, math.MaxUint64, eventstore.Backwards, 1)
	if err != nil {
		return page, fmt.Errorf("history of %s %s: %w", category, id, err)
	}
	if len(last) == 0 {
		return page, fmt.Errorf("%s %s: %w", category, id, domain.ErrNotFound)
	}
	if f.empty() {
		page.Total = int64(last[0].Version) + 1
	}
	// Without a filter, read from the cursor until the page is full; with
	// one, read the whole stream to count the matches too.
	from := after
	if !f.empty() {
		from = 0
	}
	var matched []eventstore.RecordedEvent
	err = q.scan(ctx, stream, from, func(e eventstore.RecordedEvent) (bool, error) {
		if f.match(e) {
			if !f.empty() {
				page.Total++
			}
			if e.Version >= after && len(matched) <= limit {
				matched = append(matched, e)
			}
		}
		return !f.empty() || len(matched) <= limit, nil
	})
	if err != nil {
		return page, fmt.Errorf("history of %s %s: %w", category, id, err)
	}
	if len(matched) > limit {
		matched = matched[:limit]
		next := fmt.Sprint(matched[len(matched)-1].Version + 1)
		page.NextCursor = &next
	}
	for _, e := range matched {
		page.Items = append(page.Items, historyEntry(e))
	}
	return page, nil
}

// AsOf says which past state to fold: the events that took effect at or
// before Time (their metadata occurred_at; events without it by when they
// were recorded), stopping at the first that did not, and up to resource
// version Version (when not 0). With both, the earlier state wins. Taking
// effect, not recording, is the moment: a command answers updated_at = its
// decision time and the log records the events a little later, and a
// scheduled expiry at T is recorded when the scheduler next runs.
type AsOf struct {
	Time    time.Time
	Version uint64
}

func (a AsOf) String() string {
	switch {
	case a.Version > 0 && !a.Time.IsZero():
		return fmt.Sprintf("version %d as of %s", a.Version, a.Time.Format(time.RFC3339Nano))
	case a.Version > 0:
		return fmt.Sprintf("version %d", a.Version)
	}
	return "as of " + a.Time.Format(time.RFC3339Nano)
}

// fold applies a stream's events up to the AsOf bound and returns the
// resource version reached (0 when no event qualifies). A Version bound
// past the end of the stream is not found: that version never existed.
func (q *Queries) fold(ctx context.Context, stream string, at AsOf, apply func(domain.Event)) (uint64, error) {
	var version uint64
	bounded := false
	err := q.scan(ctx, stream, 0, func(re eventstore.RecordedEvent) (bool, error) {
		if (!at.Time.IsZero() && occurredAt(re).After(at.Time)) || (at.Version > 0 && re.Version+1 > at.Version) {
			bounded = true
			return false, nil
		}
		ev, err := domain.DecodeStored(re.Type, re.Metadata, re.Data)
		if err != nil {
			return false, fmt.Errorf("event %s of %s: %w", re.ID, stream, err)
		}
		apply(ev)
		version = re.Version + 1
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	if !bounded && at.Version > version {
		return 0, fmt.Errorf("no version %d (the last is %d): %w", at.Version, version, domain.ErrNotFound)
	}
	return version, nil
}

// scan calls fn with the events of a stream from version from on, oldest
// first, a page at a time, until fn says no more (or fails) or the stream
// ends.
func (q *Queries) scan(ctx context.Context, stream string, from uint64, fn func(eventstore.RecordedEvent) (bool, error)) error {
	for {
		evs, err := q.store.ReadStream(ctx, stream, from, eventstore.Forwards, historyReadPage)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if more, err := fn(e); err != nil || !more {
				return err
			}
		}
		if len(evs) < historyReadPage {
			return nil
		}
		from = evs[len(evs)-1].Version + 1
	}
}

// occurredAt is when the event took effect (tookEffect), or its
// recorded_at when that is not known (events older than the field).
func occurredAt(re eventstore.RecordedEvent) time.Time {
	var m storedMeta
	_ = json.Unmarshal(re.Metadata, &m)
	if at := tookEffect(re, m); !at.IsZero() {
		return at
	}
	return re.RecordedAt
}

// tookEffect is the metadata's occurred_at; for an activity, the time the
// partner did it, which its data names: the metadata of activities
// recorded before 2026-12-08 holds their recording time instead.
func tookEffect(re eventstore.RecordedEvent, m storedMeta) time.Time {
	if re.Type == domain.TypeActivityRecorded {
		var a struct {
			OccurredAt time.Time `json:"occurred_at"`
		}
		if json.Unmarshal(re.Data, &a) == nil && !a.OccurredAt.IsZero() {
			return a.OccurredAt
		}
	}
	return m.OccurredAt
}

// PartnerAsOf folds a partner's events up to a past moment or version.
func (q *Queries) PartnerAsOf(ctx context.Context, program, id string, at AsOf) (projections.PartnerView, error) {
	var p domain.Partner
	version, err := q.fold(ctx, domain.PartnerStream(program, id), at, p.Apply)
	if err != nil {
		return projections.PartnerView{}, fmt.Errorf("partner %s %s: %w", id, at, err)
	}
	if !p.Exists() {
		return projections.PartnerView{}, fmt.Errorf("partner %s %s: %w", id, at, domain.ErrNotFound)
	}
	return projections.ViewOf(p.State(), version), nil
}

// GroupAsOf folds a group's events up to a past moment or version. A group
// deleted by then is not found, as GetGroup answers for a deleted group.
func (q *Queries) GroupAsOf(ctx context.Context, program, id string, at AsOf) (projections.GroupView, error) {
	var g domain.Group
	version, err := q.fold(ctx, domain.GroupStream(program, id), at, g.Apply)
	if err != nil {
		return projections.GroupView{}, fmt.Errorf("group %s %s: %w", id, at, err)
	}
	if !g.Live() {
		return projections.GroupView{}, fmt.Errorf("group %s %s: %w", id, at, domain.ErrNotFound)
	}
	return projections.GroupViewOf(g.State(), version), nil
}

// TemplateTermAsOf folds a template term's events up to a past moment or version.
func (q *Queries) TemplateTermAsOf(ctx context.Context, program, id string, at AsOf) (projections.TemplateTermView, error) {
	var t domain.TemplateTerm
	version, err := q.fold(ctx, domain.TemplateTermStream(program, id), at, t.Apply)
	if err != nil {
		return projections.TemplateTermView{}, fmt.Errorf("template term %s %s: %w", id, at, err)
	}
	if !t.Exists() {
		return projections.TemplateTermView{}, fmt.Errorf("template term %s %s: %w", id, at, domain.ErrNotFound)
	}
	return projections.TermViewOf(t.State(), version), nil
}
