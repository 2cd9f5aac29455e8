package esdbserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/partnerd/partnerd/eventstore"
)

// Append serves one append: an options message, then one message per event.
// A wrong expected version is a successful reply carrying the conflict, as
// KurrentDB does; the client turns it into ErrorCodeWrongExpectedVersion.
func (s *Service) Append(stream api.Streams_AppendServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "append: read options: %v", err)
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "append: first message must be the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	expected, err := expectedVersion(opts)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "append to %s: %v", name, err)
	}
	var events []eventstore.EventData
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		pm := msg.GetProposedMessage()
		if pm == nil {
			return status.Errorf(codes.InvalidArgument, "append to %s: options sent twice", name)
		}
		id, err := eventID(pm.GetId())
		if err != nil {
			return status.Errorf(codes.InvalidArgument, "append to %s: %v", name, err)
		}
		events = append(events, eventstore.EventData{
			ID: id, Type: pm.GetMetadata()[metaType], Data: pm.GetData(), Metadata: pm.GetCustomMetadata(),
		})
	}
	if len(events) == 0 {
		// KurrentDB accepts empty appends; the port does not.
		return status.Errorf(codes.InvalidArgument, "append to %s: no events", name)
	}
	res, err := s.store.Append(ctx, name, expected, events)
	var ve *eventstore.VersionError
	switch {
	case errors.As(err, &ve):
		return stream.SendAndClose(wrongVersionReply(ve.Actual, expected))
	case errors.Is(err, eventstore.ErrWrongVersion):
		actual, verr := s.currentVersion(ctx, name)
		if verr != nil {
			return storeStatus(fmt.Errorf("append to %s: %w", name, verr))
		}
		return stream.SendAndClose(wrongVersionReply(actual, expected))
	case err != nil:
		return storeStatus(fmt.Errorf("append to %s: %w", name, err))
	}
	return stream.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: res.Version},
		PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
			CommitPosition: uint64(res.Position), PreparePosition: uint64(res.Position),
		}},
	}}})
}

// expectedVersion maps the expected-revision option to the port's markers.
func expectedVersion(opts *api.AppendReq_Options) (int64, error) {
	switch v := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		if v.Revision > math.MaxInt64 {
			return 0, fmt.Errorf("expected revision %d out of range", v.Revision)
		}
		return int64(v.Revision), nil
	case *api.AppendReq_Options_NoStream:
		return eventstore.NoStream, nil
	case *api.AppendReq_Options_Any:
		return eventstore.Any, nil
	case *api.AppendReq_Options_StreamExists:
		return eventstore.StreamExists, nil
	default:
		return 0, errors.New("no expected revision")
	}
}

// wrongVersionReply fills both the current and the 20.6.0 fields; the client
// reads the current ones.
func wrongVersionReply(actual, expected int64) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{}
	if actual < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(actual)}
		w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(actual)}
	}
	switch expected {
	case eventstore.Any:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_Any_20_6_0{Any_20_6_0: &shared.Empty{}}
	case eventstore.StreamExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_StreamExists_20_6_0{StreamExists_20_6_0: &shared.Empty{}}
	case eventstore.NoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(expected)}
		w.ExpectedRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_ExpectedRevision_20_6_0{ExpectedRevision_20_6_0: uint64(expected)}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

// currentVersion is the version of the stream's last event, -1 if none.
func (s *Service) currentVersion(ctx context.Context, stream string) (int64, error) {
	last, err := s.store.ReadStream(ctx, stream, math.MaxUint64, eventstore.Backwards, 1)
	if err != nil {
		return 0, err
	}
	if len(last) == 0 {
		return -1, nil
	}
	return int64(last[0].Version), nil
}

// storeStatus turns a backing-store error into a gRPC status the client
// classifies sensibly: a closed store is Unavailable, an ended context keeps
// its code, anything else is Internal.
func storeStatus(err error) error {
	switch {
	case errors.Is(err, eventstore.ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	default:
		return status.Error(codes.Internal, err.Error())
	}
}
