package projections

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/partnerd/partnerd/eventstore"
)

// spill keeps the events of a rebuild's later slices in temporary files
// while the first slice is read from the log, so the log is read once
// instead of once per slice (each slice's read then costs only its own
// events, read sequentially from its file). Together the files hold the
// projection's events of every slice but the first. They are made in a
// folder of the system's temporary directory (TMPDIR) that is removed as
// soon as they are open: on Unix their space is then freed when they are
// closed, even if the process is killed; elsewhere the folder goes when
// the rebuild ends.
type spill struct {
	dir     string
	files   []*os.File
	writers []*bufio.Writer
	buf     []byte
}

func newSpill(slices int) (*spill, error) {
	dir, err := os.MkdirTemp("", "partnerd-rebuild-")
	if err != nil {
		return nil, fmt.Errorf("rebuild spill: %w", err)
	}
	s := &spill{dir: dir}
	for i := range slices {
		f, err := os.Create(filepath.Join(dir, "slice-"+strconv.Itoa(i+1)))
		if err != nil {
			s.remove()
			return nil, fmt.Errorf("rebuild spill: %w", err)
		}
		s.files = append(s.files, f)
		s.writers = append(s.writers, bufio.NewWriterSize(f, 256<<10))
	}
	_ = os.RemoveAll(dir) // the open files stay usable (Unix); else remove retries
	return s, nil
}

// write appends re to the file of slice i (1-based: slice 0 is never spilled).
func (s *spill) write(i int, re eventstore.RecordedEvent) error {
	b := s.buf[:0]
	for _, f := range []string{re.ID, re.StreamID, re.Type} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendUvarint(b, re.Version)
	b = binary.AppendUvarint(b, uint64(re.Position))
	b = binary.AppendVarint(b, re.RecordedAt.UnixNano())
	for _, f := range [][]byte{re.Data, re.Metadata} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	s.buf = b
	if _, err := s.writers[i-1].Write(b); err != nil {
		return fmt.Errorf("rebuild spill: %w", err)
	}
	return nil
}

// finish flushes every file and makes it readable from its start.
func (s *spill) finish() error {
	for i, w := range s.writers {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("rebuild spill: %w", err)
		}
		if _, err := s.files[i].Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rebuild spill: %w", err)
		}
	}
	return nil
}

// reader returns a paged read of slice i's file in the shape replaySlice
// takes: up to page events in log order, and the position of the last;
// at the end, no events and head.
func (s *spill) reader(i int, page int, head eventstore.Position) func(context.Context, eventstore.Position) ([]eventstore.RecordedEvent, eventstore.Position, error) {
	r := bufio.NewReaderSize(s.files[i-1], 256<<10)
	var done bool
	return func(ctx context.Context, _ eventstore.Position) ([]eventstore.RecordedEvent, eventstore.Position, error) {
		if done {
			return nil, head, nil
		}
		out := make([]eventstore.RecordedEvent, 0, page)
		for len(out) < page {
			re, err := readSpilled(r)
			if errors.Is(err, io.EOF) {
				done = true
				break
			}
			if err != nil {
				return nil, 0, fmt.Errorf("rebuild spill: slice %d: %w", i, err)
			}
			out = append(out, re)
		}
		if len(out) == 0 {
			return nil, head, nil
		}
		return out, out[len(out)-1].Position, ctx.Err()
	}
}

// readSpilled decodes one record that write encoded (io.EOF at a clean end).
func readSpilled(r *bufio.Reader) (eventstore.RecordedEvent, error) {
	var re eventstore.RecordedEvent
	if _, err := r.Peek(1); err != nil {
		return re, err // io.EOF: no more records
	}
	d := spillDecoder{r: r}
	re.ID, re.StreamID, re.Type = string(d.bytes()), string(d.bytes()), string(d.bytes())
	re.Version = d.uvarint()
	re.Position = eventstore.Position(d.uvarint())
	re.RecordedAt = time.Unix(0, d.varint()).UTC()
	re.Data, re.Metadata = d.bytes(), d.bytes()
	if errors.Is(d.err, io.EOF) {
		d.err = io.ErrUnexpectedEOF // a record cut short
	}
	return re, d.err
}

// spillDecoder reads a record's fields, keeping the first error.
type spillDecoder struct {
	r   *bufio.Reader
	err error
}

func (d *spillDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	d.err = err
	return v
}

func (d *spillDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	d.err = err
	return v
}

// bytes reads a length-prefixed field (nil when empty, as written).
func (d *spillDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	b := make([]byte, n)
	_, d.err = io.ReadFull(d.r, b)
	return b
}

// remove closes and deletes every file.
func (s *spill) remove() {
	for _, f := range s.files {
		_ = f.Close()
	}
	_ = os.RemoveAll(s.dir)
}
