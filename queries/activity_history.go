package queries

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
)

// HistoryItem is an entry of a partner's history that may come from its
// own stream or from its activity stream (named by Stream).
type HistoryItem struct {
	HistoryEntry
	Stream string `json:"stream"`
}

// PartnerHistoryWithActivity pages through a partner's events and its
// activities together, in log order (the order they were recorded). The
// cursor holds the resource versions reached in both streams
// ("<partner>.<activity>"). Activities come from the log, so retention
// of the feed does not shorten the history. The filter applies to both
// streams; a page may then hold fewer than limit items while next_cursor
// says there is more.
func (q *Queries) PartnerHistoryWithActivity(ctx context.Context, program, id, cursor string, limit int, f HistoryFilter) (Page[HistoryItem], error) {
	var after [2]uint64
	if cursor != "" {
		a, b, ok := strings.Cut(cursor, ".")
		var err1, err2 error
		after[0], err1 = strconv.ParseUint(a, 10, 64)
		after[1], err2 = strconv.ParseUint(b, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return Page[HistoryItem]{}, ErrBadCursor
		}
	}
	streams := [2]string{domain.PartnerStream(program, id), domain.ActivityStream(program, id)}
	var evs [2][]eventstore.RecordedEvent
	page := Page[HistoryItem]{Items: []HistoryItem{}}
	for i, s := range streams {
		var err error
		if evs[i], err = q.store.ReadStream(ctx, s, after[i], eventstore.Forwards, limit+1); err != nil {
			return page, fmt.Errorf("history of %s: %w", id, err)
		}
		last, err := q.store.ReadStream(ctx, s, math.MaxUint64, eventstore.Backwards, 1)
		if err != nil {
			return page, fmt.Errorf("history of %s: %w", id, err)
		}
		if len(last) == 0 && i == 0 {
			return page, fmt.Errorf("partner %s: %w", id, domain.ErrNotFound)
		}
		n, err := q.countMatching(ctx, s, last, f)
		if err != nil {
			return page, fmt.Errorf("history of %s: %w", id, err)
		}
		page.Total += n
	}
	next := after
	var k [2]int
	for taken := 0; taken < limit && (k[0] < len(evs[0]) || k[1] < len(evs[1])); taken++ {
		i := 0
		if k[0] >= len(evs[0]) || (k[1] < len(evs[1]) && evs[1][k[1]].Position < evs[0][k[0]].Position) {
			i = 1
		}
		e := evs[i][k[i]]
		k[i]++
		next[i] = e.Version + 1
		if !f.match(e) {
			continue
		}
		page.Items = append(page.Items, HistoryItem{Stream: e.StreamID, HistoryEntry: historyEntry(e)})
	}
	if k[0] < len(evs[0]) || k[1] < len(evs[1]) {
		c := strconv.FormatUint(next[0], 10) + "." + strconv.FormatUint(next[1], 10)
		page.NextCursor = &c
	}
	return page, nil
}

// countMatching counts the events of a stream that f matches: all of them
// (the last one's version + 1) without a filter, else by reading the stream.
func (q *Queries) countMatching(ctx context.Context, stream string, last []eventstore.RecordedEvent, f HistoryFilter) (int64, error) {
	if len(last) == 0 {
		return 0, nil
	}
	if f.empty() {
		return int64(last[0].Version) + 1, nil
	}
	var n int64
	err := q.scan(ctx, stream, 0, func(e eventstore.RecordedEvent) (bool, error) {
		if f.match(e) {
			n++
		}
		return true, nil
	})
	return n, err
}
