package embedded

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/partnerd/partnerd/eventstore"
)

var _ eventstore.Snapshotter = (*Store)(nil)

func snapKey(stream string) []byte {
	return append([]byte{prefixSnap}, stream...)
}

// ReadSnapshot implements eventstore.Snapshotter.
func (s *Store) ReadSnapshot(ctx context.Context, stream string) ([]byte, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	raw, closer, err := s.db.Get(snapKey(stream))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read snapshot of %s: %w", stream, err)
	}
	defer closer.Close()
	return append(make([]byte, 0, len(raw)), raw...), nil
}

// WriteSnapshot implements eventstore.Snapshotter. The snapshot is a plain
// Pebble write beside the log, outside the writer goroutine and its group
// commit, without fsync: a cache need not survive a crash, and an append
// must not wait behind it. A clean Close keeps it (Pebble flushes its WAL).
func (s *Store) WriteSnapshot(ctx context.Context, stream string, data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("write snapshot of %s: empty snapshot", stream)
	}
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := s.db.Set(snapKey(stream), data, pebble.NoSync); err != nil {
		return fmt.Errorf("write snapshot of %s: %w", stream, err)
	}
	return nil
}

// usable fails once the store is closing (Pebble panics on a closed DB) or
// ctx has ended.
func (s *Store) usable(ctx context.Context) error {
	select {
	case <-s.closing:
		return eventstore.ErrClosed
	default:
	}
	return ctx.Err()
}
