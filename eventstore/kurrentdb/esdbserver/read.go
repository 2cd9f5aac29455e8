package esdbserver

import (
	"context"
	"fmt"
	"math"

	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/partnerd/partnerd/eventstore"
)

// pageSize bounds each backing-store read, so one large read never holds more
// than this many events in memory.
const pageSize = 512

// sendFunc sends one event to the reader.
type sendFunc func(eventstore.RecordedEvent) error

// Read serves reads (options carry a count) and catch-up subscriptions
// (options carry subscription options), of one stream or of $all.
//
// Warning: the client panics on any read message other than an event or a
// stream-not-found, so plain reads send nothing else.
func (s *Service) Read(req *api.ReadReq, stream api.Streams_ReadServer) error {
	opts := req.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "read: no options")
	}
	if _, filtered := opts.GetFilterOption().(*api.ReadReq_Options_Filter); filtered {
		return status.Error(codes.Unimplemented, "read: server-side filters are not supported")
	}
	asString := opts.GetUuidOption().GetString_() != nil
	send := func(ev eventstore.RecordedEvent) error { return stream.Send(eventMessage(ev, asString)) }
	ctx := stream.Context()
	backwards := opts.GetReadDirection() == api.ReadReq_Options_Backwards
	switch c := opts.GetCountOption().(type) {
	case *api.ReadReq_Options_Count:
		switch o := opts.GetStreamOption().(type) {
		case *api.ReadReq_Options_Stream:
			return s.readStream(ctx, o.Stream, backwards, c.Count, stream, send)
		case *api.ReadReq_Options_All:
			return s.readAll(ctx, o.All, backwards, c.Count, send)
		}
	case *api.ReadReq_Options_Subscription:
		if backwards {
			return status.Error(codes.InvalidArgument, "subscribe: subscriptions read forwards only")
		}
		switch o := opts.GetStreamOption().(type) {
		case *api.ReadReq_Options_Stream:
			return s.subscribeStream(ctx, o.Stream, stream, send)
		case *api.ReadReq_Options_All:
			return s.subscribeAll(ctx, o.All, stream, send)
		}
	}
	return status.Error(codes.InvalidArgument, "read: need a stream or $all, and a count or subscription options")
}

// readStream sends up to count events of one stream from the requested
// revision (inclusive), or stream-not-found when the stream has no events.
func (s *Service) readStream(ctx context.Context, o *api.ReadReq_Options_StreamOptions, backwards bool, count uint64, stream api.Streams_ReadServer, send sendFunc) error {
	name := string(o.GetStreamIdentifier().GetStreamName())
	dir, from := eventstore.Forwards, uint64(0)
	if backwards {
		dir = eventstore.Backwards
	}
	atEnd := false
	switch v := o.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Revision:
		from = v.Revision
	case *api.ReadReq_Options_StreamOptions_End:
		from, atEnd = math.MaxUint64, !backwards
	}
	sent := uint64(0)
	for sent < count && !atEnd {
		n := min(count-sent, pageSize)
		page, err := s.store.ReadStream(ctx, name, from, dir, int(n))
		if err != nil {
			return storeStatus(fmt.Errorf("read %s: %w", name, err))
		}
		if len(page) == 0 {
			break
		}
		for _, ev := range page {
			if err := send(ev); err != nil {
				return err
			}
		}
		sent += uint64(len(page))
		last := page[len(page)-1].Version
		if uint64(len(page)) < n || (backwards && last == 0) {
			return nil
		}
		if backwards {
			from = last - 1
		} else {
			from = last + 1
		}
	}
	if sent > 0 {
		return nil
	}
	current, err := s.currentVersion(ctx, name)
	if err != nil {
		return storeStatus(fmt.Errorf("read %s: %w", name, err))
	}
	if current < 0 {
		return stream.Send(notFoundMessage(name))
	}
	return nil
}

// readAll sends up to count events of the global log. Forwards reads are
// inclusive of the requested position; backwards reads, as in KurrentDB,
// start strictly before it.
func (s *Service) readAll(ctx context.Context, o *api.ReadReq_Options_AllOptions, backwards bool, count uint64, send sendFunc) error {
	if backwards {
		return s.readAllBackwards(ctx, o, count, send)
	}
	var after eventstore.Position
	switch v := o.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Position:
		if c := v.Position.GetCommitPosition(); c > 0 {
			after = eventstore.Position(c - 1)
		}
	case *api.ReadReq_Options_AllOptions_End:
		return nil
	}
	for sent := uint64(0); sent < count; {
		n := min(count-sent, pageSize)
		page, err := s.store.ReadAll(ctx, after, int(n))
		if err != nil {
			return storeStatus(fmt.Errorf("read $all after %d: %w", after, err))
		}
		for _, ev := range page {
			if err := send(ev); err != nil {
				return err
			}
		}
		if uint64(len(page)) < n {
			return nil
		}
		sent += n
		after = page[len(page)-1].Position
	}
	return nil
}
