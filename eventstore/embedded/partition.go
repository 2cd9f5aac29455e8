package embedded

import (
	"context"
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/cockroachdb/pebble"

	"github.com/partnerd/partnerd/eventstore"
)

// ReadAllFiltered implements eventstore.FilteredReader: a log scan that
// reads only the stream ID of each record it skips.
func (s *Store) ReadAllFiltered(ctx context.Context, after eventstore.Position, max int, keep func(stream string) bool) ([]eventstore.RecordedEvent, eventstore.Position, error) {
	head := eventstore.Position(s.head.Load())
	if max <= 0 || after >= head {
		return nil, after, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(after + 1), UpperBound: logKey(head + 1)})
	if err != nil {
		return nil, after, err
	}
	defer it.Close()
	out := make([]eventstore.RecordedEvent, 0, min(max, 1024))
	last, examined := after, 0
	for ok := it.First(); ok && len(out) < max; ok = it.Next() {
		pos := eventstore.Position(binary.BigEndian.Uint64(it.Key()[1:]))
		raw := it.Value()
		stream, err := recordStream(raw)
		if err != nil {
			return nil, after, fmt.Errorf("read log at %d: %w", pos, err)
		}
		if keep(unsafe.String(unsafe.SliceData(stream), len(stream))) {
			ev, err := decodeRecord(pos, raw)
			if err != nil {
				return nil, after, fmt.Errorf("read log at %d: %w", pos, err)
			}
			out = append(out, ev)
		}
		last = pos
		if examined++; examined%65536 == 0 && ctx.Err() != nil {
			return nil, after, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, after, err
	}
	return out, last, it.Error()
}

// recordStream returns the stream ID of an encoded record (see
// encodeRecord), without copying it.
func recordStream(raw []byte) ([]byte, error) {
	r, err := recordReader(raw)
	if err != nil {
		return nil, err
	}
	r.view() // the event ID
	stream := r.view()
	return stream, r.err
}

// CountStreams implements eventstore.FilteredReader, from the stream
// index: one seek per stream. (A stream whose ID continues another's with
// a byte below 0x02 is counted with it: stream IDs hold no control bytes.)
func (s *Store) CountStreams(ctx context.Context, prefix string) (int, error) {
	lower := append([]byte{prefixStream}, prefix...)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	var next []byte
	for ok := it.First(); ok; ok = it.SeekGE(next) {
		k := it.Key()
		// 'S' + stream + 0x00 + version(8): the next stream starts after stream + 0x01.
		next = append(append(next[:0], k[:len(k)-9]...), 1)
		if n++; n%65536 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	return n, it.Error()
}

// prefixEnd is the smallest key greater than every key starting with p
// (nil: no such key).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
