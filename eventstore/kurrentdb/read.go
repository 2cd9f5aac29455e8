package kurrentdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/partnerd/partnerd/eventstore"
)

// headPage is how many events Head reads per step while it skips hidden
// events at the end of $all.
const headPage = 64

// ReadStream implements eventstore.Store. A missing stream yields no events.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, max int) ([]eventstore.RecordedEvent, error) {
	if max <= 0 {
		return nil, nil
	}
	opts := esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from)}
	switch dir {
	case eventstore.Forwards:
	case eventstore.Backwards:
		opts.Direction = esdb.Backwards
		if from == math.MaxUint64 {
			opts.From = esdb.End{}
		}
	default:
		return nil, fmt.Errorf("read %s: invalid direction %d", stream, dir)
	}
	ctx, cancel := s.scope(ctx)
	defer cancel()
	var recs []*esdb.RecordedEvent
	err := s.call(ctx, func(ctx context.Context, c *esdb.Client) error {
		rs, err := c.ReadStream(ctx, stream, opts, uint64(max))
		if err != nil {
			return err
		}
		recs, err = collect(rs)
		return err
	})
	if hasCode(err, esdb.ErrorCodeResourceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	out := make([]eventstore.RecordedEvent, len(recs))
	for i, r := range recs {
		out[i] = recorded(r)
	}
	return out, nil
}

// ReadAll implements eventstore.Store: up to max log events (not hidden) with
// positions strictly after `after`. KurrentDB reads are inclusive, so the
// event at `after` itself is read and dropped. `after` must be 0 or a
// position this store returned: KurrentDB rejects or misreads positions
// that are not event boundaries.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	if max <= 0 {
		return nil, nil
	}
	ctx, cancel := s.scope(ctx)
	defer cancel()
	var out []eventstore.RecordedEvent
	cursor := after
	for len(out) < max {
		want := uint64(max-len(out)) + 1
		page, err := s.readAll(ctx, esdb.Forwards, allPosition(cursor), want)
		if err != nil {
			return nil, fmt.Errorf("read $all after %d: %w", cursor, err)
		}
		moved := false
		for _, r := range page {
			pos := eventstore.Position(r.Position.Commit)
			if pos <= cursor {
				continue
			}
			cursor, moved = pos, true
			if !hidden(r) {
				out = append(out, recorded(r))
				if len(out) == max {
					break
				}
			}
		}
		if uint64(len(page)) < want || !moved {
			break
		}
	}
	return out, nil
}

// Head implements eventstore.Store: the position of the last log event, 0
// if there is none. It reads $all backwards, skipping the system events
// KurrentDB writes on its own and the snapshots, so that Head is a position
// Subscribe and ReadAll actually deliver.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	ctx, cancel := s.scope(ctx)
	defer cancel()
	var from esdb.AllPosition = esdb.End{}
	for {
		page, err := s.readAll(ctx, esdb.Backwards, from, headPage)
		if err != nil {
			return 0, fmt.Errorf("head of $all: %w", err)
		}
		for _, r := range page {
			if !hidden(r) {
				return eventstore.Position(r.Position.Commit), nil
			}
		}
		if len(page) < headPage {
			return 0, nil
		}
		last := page[len(page)-1].Position
		from = esdb.Position{Commit: last.Commit, Prepare: last.Prepare}
	}
}

// readAll reads count events of $all from a position, in a direction.
func (s *Store) readAll(ctx context.Context, dir esdb.Direction, from esdb.AllPosition, count uint64) ([]*esdb.RecordedEvent, error) {
	var recs []*esdb.RecordedEvent
	err := s.call(ctx, func(ctx context.Context, c *esdb.Client) error {
		rs, err := c.ReadAll(ctx, esdb.ReadAllOptions{Direction: dir, From: from}, count)
		if err != nil {
			return err
		}
		recs, err = collect(rs)
		return err
	})
	if err != nil {
		// recs is not ours to read: call returns when ctx ends, while f
		// may still be running (and writing recs) on its goroutine.
		return nil, err
	}
	return recs, nil
}

// allPosition is where a read or subscription strictly after p starts:
// KurrentDB wants commit and prepare, which are equal for gRPC appends.
func allPosition(p eventstore.Position) esdb.AllPosition {
	if p == 0 {
		return esdb.Start{}
	}
	return esdb.Position{Commit: uint64(p), Prepare: uint64(p)}
}

// collect drains and closes a read.
func collect(rs *esdb.ReadStream) ([]*esdb.RecordedEvent, error) {
	defer rs.Close()
	var out []*esdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if r := ev.OriginalEvent(); r != nil {
			out = append(out, r)
		}
	}
}

// hidden reports the events of $all that are not events of the log:
// KurrentDB's own (their type or stream starts with $, metadata streams
// included) and this adapter's snapshots (snapshot.go).
func hidden(r *esdb.RecordedEvent) bool {
	return strings.HasPrefix(r.EventType, "$") || strings.HasPrefix(r.StreamID, "$") ||
		eventstore.IsSnapshotStream(r.StreamID)
}

// recorded converts a client event to the port's.
func recorded(r *esdb.RecordedEvent) eventstore.RecordedEvent {
	return eventstore.RecordedEvent{
		ID:         r.EventID.String(),
		StreamID:   r.StreamID,
		Type:       r.EventType,
		Version:    r.EventNumber,
		Position:   eventstore.Position(r.Position.Commit),
		RecordedAt: r.CreatedDate,
		Data:       r.Data,
		Metadata:   r.UserMetadata,
	}
}
