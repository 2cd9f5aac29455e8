package kurrentdb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/kurrentdb"
	"github.com/partnerd/partnerd/eventstore/kurrentdb/esdbserver"
)

// slowReads is a backing store whose log reads take a while.
type slowReads struct {
	eventstore.Store
	delay time.Duration
}

func (s slowReads) ReadAll(ctx context.Context, after eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	time.Sleep(s.delay)
	return s.Store.ReadAll(ctx, after, max)
}

// A read of $all whose context ends before the server answers returns the
// context's error, and (under -race) reads nothing the abandoned client
// call is still writing.
func TestReadAllGivesUpWithItsContext(t *testing.T) {
	backing, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backing.Close() })
	ctx := testCtx(t)
	if _, err := backing.Append(ctx, "partner-a-1", eventstore.NoStream, []eventstore.EventData{{ID: "e-1", Type: "partner.created", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	addr, stop, err := esdbserver.Start(slowReads{Store: backing, delay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	s, err := kurrentdb.Open("esdb://" + addr + "?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i := 0; i < 5; i++ {
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		evs, err := s.ReadAll(short, 0, 10)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read with a 20 ms deadline against a 200 ms server: %d events, err %v; want the deadline's error", len(evs), err)
		}
	}
	// The same store still reads once it is given the time.
	evs, err := s.ReadAll(ctx, 0, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("read with time to spare: %d events, err %v; want 1", len(evs), err)
	}
}
