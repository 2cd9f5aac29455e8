package kurrentdb

import (
	"context"
	"fmt"
	"math"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/partnerd/partnerd/eventstore"
)

// snapshotType is the event type of a snapshot in its snapshot stream.
const snapshotType = "partnerd.snapshot"

var _ eventstore.Snapshotter = (*Store)(nil)

// ReadSnapshot implements eventstore.Snapshotter: the last event of the
// stream's snapshot stream (eventstore.SnapshotStream), read backwards from
// its end, or nil when there is none.
func (s *Store) ReadSnapshot(ctx context.Context, stream string) ([]byte, error) {
	recs, err := s.ReadStream(ctx, eventstore.SnapshotStream(stream), math.MaxUint64, eventstore.Backwards, 1)
	if err != nil {
		return nil, fmt.Errorf("read snapshot of %s: %w", stream, err)
	}
	if len(recs) == 0 || recs[0].Type != snapshotType || len(recs[0].Data) == 0 {
		return nil, nil
	}
	return recs[0].Data, nil
}

// WriteSnapshot implements eventstore.Snapshotter: it appends one event to
// the stream's snapshot stream, whatever its version. The first write also
// sets the snapshot stream's metadata to $maxCount 1, so that KurrentDB
// keeps only the latest snapshot (older ones go at the next scavenge); that
// is best effort: without it the snapshot stream only grows, by one event
// per snapshot, and reads still take its last event.
func (s *Store) WriteSnapshot(ctx context.Context, stream string, data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("write snapshot of %s: empty snapshot", stream)
	}
	name := eventstore.SnapshotStream(stream)
	ev := esdb.EventData{EventID: uuid.New(), EventType: snapshotType, ContentType: esdb.ContentTypeBinary, Data: data}
	ctx, cancel := s.scope(ctx)
	defer cancel()
	var res *esdb.WriteResult
	err := s.call(ctx, func(ctx context.Context, c *esdb.Client) error {
		r, err := c.AppendToStream(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, ev)
		res = r
		return err
	})
	if err != nil {
		return fmt.Errorf("write snapshot of %s: %w", stream, err)
	}
	if res.NextExpectedVersion == 0 { // the stream's first event: this write created it
		var meta esdb.StreamMetadata
		meta.SetMaxCount(1)
		_ = s.call(ctx, func(ctx context.Context, c *esdb.Client) error {
			_, err := c.SetStreamMetadata(ctx, name, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, meta)
			return err
		})
	}
	return nil
}
