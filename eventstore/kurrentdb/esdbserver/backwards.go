package esdbserver

import (
	"context"
	"fmt"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"

	"github.com/partnerd/partnerd/eventstore"
)

// readAllBackwards sends up to count events with positions strictly below the
// requested one (below head+1 for End), newest first.
func (s *Service) readAllBackwards(ctx context.Context, o *api.ReadReq_Options_AllOptions, count uint64, send sendFunc) error {
	var before eventstore.Position
	switch v := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		before = eventstore.Position(v.Position.GetCommitPosition())
	case *api.ReadReq_Options_AllOptions_End:
		head, err := s.store.Head(ctx)
		if err != nil {
			return storeStatus(fmt.Errorf("read $all backwards: head: %w", err))
		}
		before = head + 1
	default:
		return nil // backwards from the start: nothing
	}
	for count > 0 && before > 1 {
		page, err := s.lastBefore(ctx, before, int(min(count, pageSize)))
		if err != nil {
			return storeStatus(fmt.Errorf("read $all backwards before %d: %w", before, err))
		}
		if len(page) == 0 {
			return nil
		}
		for i := len(page) - 1; i >= 0; i-- {
			if err := send(page[i]); err != nil {
				return err
			}
		}
		count -= uint64(len(page))
		before = page[0].Position
	}
	return nil
}

// lastBefore returns the last n events with positions below before, oldest
// first. The port reads $all forwards only, so it scans a window ending at
// before, doubling the window until it holds n events or reaches the start:
// one pass on a dense log such as the embedded store's.
func (s *Service) lastBefore(ctx context.Context, before eventstore.Position, n int) ([]eventstore.RecordedEvent, error) {
	for window := uint64(n); ; window *= 2 {
		var after eventstore.Position
		if uint64(before) > window+1 {
			after = before - 1 - eventstore.Position(window)
		}
		evs, err := s.readRange(ctx, after, before)
		if err != nil {
			return nil, err
		}
		if len(evs) >= n || after == 0 {
			return evs[max(0, len(evs)-n):], nil
		}
	}
}

// readRange returns the events with after < position < before.
func (s *Service) readRange(ctx context.Context, after, before eventstore.Position) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	for {
		page, err := s.store.ReadAll(ctx, after, pageSize)
		if err != nil {
			return nil, err
		}
		for _, ev := range page {
			if ev.Position >= before {
				return out, nil
			}
			out = append(out, ev)
		}
		if len(page) < pageSize {
			return out, nil
		}
		after = page[len(page)-1].Position
	}
}
