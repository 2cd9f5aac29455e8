// Package eventstore declares the event log port that commands, queries, the
// relay and projections depend on. Adapters live in sub-packages: embedded
// (Pebble on local disk) and kurrentdb (KurrentDB/EventStoreDB over gRPC).
// Both pass the shared contract suite in eventstoretest.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Expected-version markers for Append. Any other value >= 0 is the exact
// version the stream must be at (the version of its last event).
const (
	// Any appends whatever the stream's state.
	Any int64 = -2
	// NoStream requires the stream not to exist yet.
	NoStream int64 = -1
	// StreamExists requires the stream to exist (at any version).
	StreamExists int64 = -4
)

// Stream versions start at 0 for the first event, as in KurrentDB.

// ErrWrongVersion is returned by Append when the stream is not at the
// expected version. Every adapter maps its own conflict error to this one;
// callers test it with errors.Is.
var ErrWrongVersion = errors.New("wrong expected version")

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("event store closed")

// VersionError carries the details of a wrong-expected-version conflict.
// It matches ErrWrongVersion under errors.Is.
type VersionError struct {
	Stream   string
	Expected int64
	Actual   int64 // -1 when the stream does not exist
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("append to %s: expected version %d, stream is at %d: %v", e.Stream, e.Expected, e.Actual, ErrWrongVersion)
}

// Is makes errors.Is(err, ErrWrongVersion) hold.
func (e *VersionError) Is(target error) bool { return target == ErrWrongVersion }

// Position is a place in the global log. It orders every event of every
// stream. In the embedded store it is a dense sequence starting at 1; in
// KurrentDB it is the commit position. Zero means "before the first event".
// Clients see it only as an opaque string.
type Position uint64

// String renders the position for clients.
func (p Position) String() string { return strconv.FormatUint(uint64(p), 10) }

// ParsePosition parses what String produced.
func ParsePosition(s string) (Position, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("position %q: not a log position", s)
	}
	return Position(v), nil
}

// EventData is an event to append.
type EventData struct {
	ID       string // UUID; chosen by the caller, stable across retries and re-publishes
	Type     string // e.g. "partner.created"
	Data     []byte // JSON
	Metadata []byte // JSON (actor, correlation, causation, idempotency key, schema version)
}

// RecordedEvent is an event as stored.
type RecordedEvent struct {
	ID         string
	StreamID   string
	Type       string
	Version    uint64   // 0-based version within its stream
	Position   Position // global position
	RecordedAt time.Time
	Data       []byte
	Metadata   []byte
}

// AppendResult tells where an append landed.
type AppendResult struct {
	// Version of the last appended event in its stream.
	Version uint64
	// Position of the last appended event in the global log.
	Position Position
}

// Direction of a stream read.
type Direction int

const (
	Forwards Direction = iota
	Backwards
)

// Store is the event log port.
type Store interface {
	// Append writes events to one stream atomically, if the stream is at
	// expected (a version >= 0, or Any, NoStream, StreamExists). It returns
	// only once the events are durable. Appending no events is an error.
	Append(ctx context.Context, stream string, expected int64, events []EventData) (AppendResult, error)

	// ReadStream reads up to max events of one stream starting at version
	// from (inclusive), forwards or backwards. Reading backwards from
	// ^uint64(0) starts at the last event. A missing stream yields no events
	// and no error.
	ReadStream(ctx context.Context, stream string, from uint64, dir Direction, max int) ([]RecordedEvent, error)

	// ReadAll reads up to max events of the global log with positions
	// strictly after `after`, in position order.
	ReadAll(ctx context.Context, after Position, max int) ([]RecordedEvent, error)

	// Subscribe delivers every event with a position strictly after `after`,
	// first the stored ones (catch-up), then new ones as they are appended,
	// in position order, with no gaps and no duplicates, until ctx ends or
	// the handler returns an error (which Subscribe then returns). A handler
	// call returning nil means the event is processed.
	Subscribe(ctx context.Context, after Position, handle func(RecordedEvent) error) error

	// Head is the position of the last event in the log (0 when empty).
	Head(ctx context.Context) (Position, error)

	// Close releases the store.
	Close() error
}

// StreamEvent is one event of an AppendUnique call, with its stream.
type StreamEvent struct {
	Stream string
	EventData
}

// Landing tells what AppendUnique did with one event.
type Landing struct {
	// Duplicate: the log already held an event with this ID (appended
	// through AppendUnique), or the same call held it earlier; nothing was
	// appended for it.
	Duplicate bool
	// Position of the appended event; for a duplicate, of the first event
	// with its ID (0 when the store cannot tell).
	Position Position
	// Version of the appended event in its stream (0 for a duplicate).
	Version uint64
}

// UniqueAppender is an optional capability of a Store, for high-volume
// facts without invariants (partner activity): append events to many
// streams at once with expected version Any, in one durable step, and drop
// every event whose ID was appended through AppendUnique before. The ID
// index is as durable as the log, so a re-sent event stays harmless across
// restarts. Events of one stream keep their order in the call.
type UniqueAppender interface {
	AppendUnique(ctx context.Context, events []StreamEvent) ([]Landing, error)
}

// FilteredReader is an optional capability of a Store, for replaying one
// part of a large log: a rebuild that folds each stream in memory reads
// the log once per slice of the streams it folds, and most of each read is
// skipped. The store tests each event's stream ID before decoding the
// event, so a skipped event costs little more than its read from disk.
type FilteredReader interface {
	// ReadAllFiltered reads up to max events with positions strictly after
	// `after`, in position order, of the streams keep accepts, and returns
	// the position of the last event it examined (kept or not), from which
	// the next call continues; it examines no event past the head. keep
	// must not retain the string it is given.
	ReadAllFiltered(ctx context.Context, after Position, max int, keep func(stream string) bool) ([]RecordedEvent, Position, error)

	// CountStreams counts the streams whose ID starts with prefix.
	CountStreams(ctx context.Context, prefix string) (int, error)
}

// Snapshotter is an optional capability of a Store: one opaque snapshot
// per stream, kept beside the log (commands keep a partner's folded state
// in it, so a long stream need not be folded from its first event).
//
// A snapshot is a cache and never part of the log: it has no position and
// no version, is never returned by ReadAll, ReadStream or Subscribe, never
// moves Head, is never published, and may be lost at any time (a crash may
// drop a recent one; an adapter may evict it). Whoever reads one must check
// it against the log before trusting it.
type Snapshotter interface {
	// ReadSnapshot returns the stream's latest snapshot, or nil and no error
	// when there is none.
	ReadSnapshot(ctx context.Context, stream string) ([]byte, error)
	// WriteSnapshot replaces the stream's snapshot with data (not empty).
	// It need not be durable when it returns.
	WriteSnapshot(ctx context.Context, stream string, data []byte) error
}

// SnapshotStreamPrefix starts the name of every stream an adapter may keep
// snapshots in (the KurrentDB adapter writes the snapshots of stream s to
// "snapshot-" + s). Such streams hold no events of the log: an adapter
// hides them from ReadAll, Subscribe and Head, and every consumer of the
// global log (relay, republish, rebuilds) skips them too, in case a store
// shows them anyway (e.g. the embedded store behind the esdbserver test
// server holds them as plain streams). No aggregate stream can be named so:
// every aggregate stream starts with its domain category and a '-'
// ("partner-<program>-<id>", …), and no category is "snapshot".
const SnapshotStreamPrefix = "snapshot-"

// SnapshotStream is the name of the stream that holds stream's snapshots,
// for adapters that keep them in streams.
func SnapshotStream(stream string) string { return SnapshotStreamPrefix + stream }

// IsSnapshotStream reports whether stream holds snapshots rather than
// events of the log: a snapshot stream, or the KurrentDB metadata stream
// ("$$" + name) of one.
func IsSnapshotStream(stream string) bool {
	return strings.HasPrefix(strings.TrimPrefix(stream, "$$"), SnapshotStreamPrefix)
}
