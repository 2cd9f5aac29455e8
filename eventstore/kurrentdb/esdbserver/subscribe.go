package esdbserver

import (
	"context"
	"errors"
	"fmt"
	"math"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/partnerd/partnerd/eventstore"
)

// subscribeAll streams $all strictly after the requested position (from the
// first event for Start, after the current head for End): stored events
// first, then live ones, until the client goes away.
func (s *Service) subscribeAll(ctx context.Context, o *api.ReadReq_Options_AllOptions, stream api.Streams_ReadServer, send sendFunc) error {
	var after eventstore.Position
	switch v := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		after = eventstore.Position(v.Position.GetCommitPosition())
	case *api.ReadReq_Options_AllOptions_End:
		head, err := s.store.Head(ctx)
		if err != nil {
			return storeStatus(fmt.Errorf("subscribe to $all: head: %w", err))
		}
		after = head
	}
	if err := stream.Send(confirmationMessage()); err != nil {
		return err
	}
	err := s.store.Subscribe(ctx, after, send)
	return subscriptionEnd(ctx, fmt.Errorf("subscribe to $all after %d: %w", after, err))
}

// subscribeStream streams one stream strictly after the requested revision
// (from revision 0 for Start, after its current last event for End).
//
// Catch-up reads the stream itself; live events come from a $all
// subscription started at the head taken before catch-up, so every event of
// the stream is either read or delivered live, and the version filter drops
// the ones seen twice.
func (s *Service) subscribeStream(ctx context.Context, o *api.ReadReq_Options_StreamOptions, stream api.Streams_ReadServer, send sendFunc) error {
	name := string(o.GetStreamIdentifier().GetStreamName())
	head, err := s.store.Head(ctx)
	if err != nil {
		return storeStatus(fmt.Errorf("subscribe to %s: head: %w", name, err))
	}
	last, catchUp := int64(-1), true
	switch v := o.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		if v.Revision >= math.MaxInt64 {
			return status.Errorf(codes.InvalidArgument, "subscribe to %s: revision %d out of range", name, v.Revision)
		}
		last = int64(v.Revision)
	case *api.ReadReq_Options_StreamOptions_End:
		if last, err = s.currentVersion(ctx, name); err != nil {
			return storeStatus(fmt.Errorf("subscribe to %s: %w", name, err))
		}
		catchUp = false
	}
	if err := stream.Send(confirmationMessage()); err != nil {
		return err
	}
	for catchUp {
		page, err := s.store.ReadStream(ctx, name, uint64(last+1), eventstore.Forwards, pageSize)
		if err != nil {
			return storeStatus(fmt.Errorf("subscribe to %s: catch up: %w", name, err))
		}
		for _, ev := range page {
			if err := send(ev); err != nil {
				return err
			}
			last = int64(ev.Version)
		}
		catchUp = len(page) == pageSize
	}
	err = s.store.Subscribe(ctx, head, func(ev eventstore.RecordedEvent) error {
		if ev.StreamID != name || int64(ev.Version) <= last {
			return nil
		}
		last = int64(ev.Version)
		return send(ev)
	})
	return subscriptionEnd(ctx, fmt.Errorf("subscribe to %s after version %d: %w", name, last, err))
}

// subscriptionEnd maps the reason a subscription ended to what the client
// sees: nothing when the client left, Unavailable when the store closed (so
// the subscriber resubscribes), the send error otherwise.
func subscriptionEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	if errors.Is(err, eventstore.ErrClosed) {
		return status.Error(codes.Unavailable, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return storeStatus(err)
}
