package kurrentdb

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/partnerd/partnerd/eventstore"
)

// Append implements eventstore.Store. Event IDs must be UUIDs; KurrentDB
// uses them to make a retried append idempotent. A conflict is returned as
// *eventstore.VersionError, which matches eventstore.ErrWrongVersion.
// Snapshot streams (eventstore.IsSnapshotStream) are not the log's:
// appending to one is refused.
func (s *Store) Append(ctx context.Context, stream string, expected int64, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if len(events) == 0 {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: no events", stream)
	}
	if eventstore.IsSnapshotStream(stream) {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: a snapshot stream, not part of the log", stream)
	}
	rev, err := expectedRevision(expected)
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	data := make([]esdb.EventData, len(events))
	for i, e := range events {
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: event %d: id %q is not a UUID", stream, i, e.ID)
		}
		data[i] = esdb.EventData{EventID: id, EventType: e.Type, ContentType: esdb.ContentTypeJson, Data: e.Data, Metadata: e.Metadata}
	}
	ctx, cancel := s.scope(ctx)
	defer cancel()
	var res *esdb.WriteResult
	err = s.call(ctx, func(ctx context.Context, c *esdb.Client) error {
		r, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: rev}, data...)
		res = r
		return err
	})
	if hasCode(err, esdb.ErrorCodeWrongExpectedVersion) {
		return eventstore.AppendResult{}, s.versionError(ctx, stream, expected, err)
	}
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	// The client calls the current revision "next expected version".
	return eventstore.AppendResult{Version: res.NextExpectedVersion, Position: eventstore.Position(res.CommitPosition)}, nil
}

// expectedRevision maps the port's expected version onto the client's.
func expectedRevision(expected int64) (esdb.ExpectedRevision, error) {
	switch {
	case expected == eventstore.Any:
		return esdb.Any{}, nil
	case expected == eventstore.NoStream:
		return esdb.NoStream{}, nil
	case expected == eventstore.StreamExists:
		return esdb.StreamExists{}, nil
	case expected >= 0:
		return esdb.Revision(uint64(expected)), nil
	default:
		return nil, fmt.Errorf("invalid expected version %d", expected)
	}
}

// versionError builds the port's conflict error. The client reports the
// stream's actual revision only inside its message ("... but got '7'" or
// "... but got 'no_stream'"); when that text cannot be parsed, the actual
// version is read from the stream (which may have moved on since).
func (s *Store) versionError(ctx context.Context, stream string, expected int64, err error) error {
	ve := &eventstore.VersionError{Stream: stream, Expected: expected, Actual: -1}
	if actual, ok := parseActual(err.Error()); ok {
		ve.Actual = actual
		return ve
	}
	last, rerr := s.ReadStream(ctx, stream, math.MaxUint64, eventstore.Backwards, 1)
	if rerr == nil && len(last) == 1 {
		ve.Actual = int64(last[0].Version)
	}
	return ve
}

// parseActual extracts the actual revision from the client's message.
func parseActual(msg string) (int64, bool) {
	_, rest, ok := strings.Cut(msg, "but got '")
	if !ok {
		return 0, false
	}
	got, _, ok := strings.Cut(rest, "'")
	if !ok {
		return 0, false
	}
	if got == "no_stream" {
		return -1, true
	}
	v, err := strconv.ParseInt(got, 10, 64)
	if err != nil || v < 0 {
		return 0, false
	}
	return v, true
}
