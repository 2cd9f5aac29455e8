package embedded

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/partnerd/partnerd/eventstore"
)

// Key layout (one Pebble keyspace):
//
//	'L' + position(8, big endian)                 → encoded event record
//	'S' + stream + 0x00 + version(8, big endian)   → position(8, big endian)
//	'I' + event ID                                 → position(8, big endian)
//	'P' + stream                                   → snapshot (opaque bytes)
//
// The 'I' keys index the IDs of events appended through AppendUnique.
//
// The 'P' keys hold one snapshot per stream (snapshot.go): a cache beside
// the log, written without fsync, with no position; no log or stream read
// ever visits them.
//
// The 'L' keys are the global log; the 'S' keys index each stream.
const (
	prefixLog    = 'L'
	prefixStream = 'S'
	prefixID     = 'I'
	prefixSnap   = 'P'
)

func idKey(dst []byte, id string) []byte {
	dst = append(dst, prefixID)
	return append(dst, id...)
}

func logKey(p eventstore.Position) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], uint64(p))
	return k
}

func streamKey(stream string, version uint64) []byte {
	k := make([]byte, 0, len(stream)+10)
	k = append(k, prefixStream)
	k = append(k, stream...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, version)
}

// streamBounds returns the key range holding every version of stream.
func streamBounds(stream string) (lower, upper []byte) {
	lower = append(append([]byte{prefixStream}, stream...), 0)
	upper = append(append([]byte{prefixStream}, stream...), 1)
	return lower, upper
}

var errCorrupt = errors.New("corrupt event record")

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func encodeRecord(ev *eventstore.RecordedEvent) []byte {
	b := make([]byte, 0, 64+len(ev.ID)+len(ev.StreamID)+len(ev.Type)+len(ev.Data)+len(ev.Metadata))
	b = append(b, 1) // record format version
	b = appendString(b, ev.ID)
	b = appendString(b, ev.StreamID)
	b = appendString(b, ev.Type)
	b = binary.AppendUvarint(b, ev.Version)
	b = binary.AppendVarint(b, ev.RecordedAt.UnixNano())
	b = appendBytes(b, ev.Data)
	b = appendBytes(b, ev.Metadata)
	return b
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

// view returns the next length-prefixed field without copying it: valid
// only as long as the record's bytes are.
func (r *reader) view() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errCorrupt
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// bytes returns a copy of the next length-prefixed field.
func (r *reader) bytes() []byte {
	v := r.view()
	if r.err != nil {
		return nil
	}
	c := make([]byte, len(v))
	copy(c, v)
	return c
}

// recordReader reads an encoded record (see encodeRecord) after checking
// its format version.
func recordReader(raw []byte) (*reader, error) {
	if len(raw) == 0 || raw[0] != 1 {
		return nil, errCorrupt
	}
	return &reader{b: raw[1:]}, nil
}

func decodeRecord(pos eventstore.Position, raw []byte) (eventstore.RecordedEvent, error) {
	r, err := recordReader(raw)
	if err != nil {
		return eventstore.RecordedEvent{}, err
	}
	ev := eventstore.RecordedEvent{Position: pos}
	ev.ID = string(r.bytes())
	ev.StreamID = string(r.bytes())
	ev.Type = string(r.bytes())
	ev.Version = r.uvarint()
	ev.RecordedAt = time.Unix(0, r.varint()).UTC()
	ev.Data = r.bytes()
	ev.Metadata = r.bytes()
	if r.err != nil {
		return eventstore.RecordedEvent{}, r.err
	}
	return ev, nil
}
