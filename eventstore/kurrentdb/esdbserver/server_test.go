package esdbserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/kurrentdb/esdbserver"
)

// client starts a server over a fresh embedded store and returns a raw
// client connected to it.
func client(t *testing.T) (*esdb.Client, context.Context) {
	t.Helper()
	backing, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := esdbserver.Start(backing)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := esdb.ParseConnectionString("esdb://" + addr + "?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	conf.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(func() {
		cancel()
		_ = c.Close()
		stop()
		_ = backing.Close()
	})
	return c, ctx
}

func appendN(t *testing.T, c *esdb.Client, ctx context.Context, stream string, n int) {
	t.Helper()
	for i := range n {
		ev := esdb.EventData{EventID: uuid.New(), EventType: "t.x", ContentType: esdb.ContentTypeJson, Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
		if _, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{}, ev); err != nil {
			t.Fatal(err)
		}
	}
}

// drain reads a whole read.
func drain(rs *esdb.ReadStream, err error) ([]*esdb.RecordedEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ev.OriginalEvent())
	}
}

// mustDrain is drain failing the test on error.
func mustDrain(t *testing.T) func(*esdb.ReadStream, error) []*esdb.RecordedEvent {
	return func(rs *esdb.ReadStream, err error) []*esdb.RecordedEvent {
		t.Helper()
		evs, err := drain(rs, err)
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
}

func TestReads(t *testing.T) {
	c, ctx := client(t)
	appendN(t, c, ctx, "a", 3)
	appendN(t, c, ctx, "b", 2) // $all: a0 a1 a2 b0 b1 at positions 1..5

	_, err := drain(c.ReadStream(ctx, "missing", esdb.ReadStreamOptions{}, 10))
	var e *esdb.Error
	if !errors.As(err, &e) || e.Code() != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("read missing stream: %v, want ResourceNotFound", err)
	}
	evs := mustDrain(t)(c.ReadStream(ctx, "a", esdb.ReadStreamOptions{From: esdb.End{}}, 10))
	if len(evs) != 0 {
		t.Fatalf("forwards from end read %d events", len(evs))
	}
	evs = mustDrain(t)(c.ReadStream(ctx, "a", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 2))
	if got := revisions(evs); got != "[2 1]" {
		t.Fatalf("backwards from end = %s", got)
	}
	if d := time.Since(evs[0].CreatedDate); d < 0 || d > time.Minute || evs[0].ContentType != "application/json" || evs[0].EventType != "t.x" {
		t.Fatalf("event metadata: created %v, content type %q, type %q", evs[0].CreatedDate, evs[0].ContentType, evs[0].EventType)
	}
	evs = mustDrain(t)(c.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Position{Commit: 3, Prepare: 3}}, 2))
	if got := positions(evs); got != "[3 4]" {
		t.Fatalf("forwards from position 3 = %s, want inclusive [3 4]", got)
	}
	evs = mustDrain(t)(c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 2))
	if got := positions(evs); got != "[5 4]" {
		t.Fatalf("backwards from end = %s", got)
	}
	evs = mustDrain(t)(c.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.Position{Commit: 4, Prepare: 4}}, 10))
	if got := positions(evs); got != "[3 2 1]" {
		t.Fatalf("backwards from position 4 = %s, want exclusive [3 2 1]", got)
	}
}

func revisions(evs []*esdb.RecordedEvent) string {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.EventNumber
	}
	return fmt.Sprint(out)
}

func positions(evs []*esdb.RecordedEvent) string {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		if e.Position.Commit != e.Position.Prepare {
			return fmt.Sprintf("commit %d != prepare %d", e.Position.Commit, e.Position.Prepare)
		}
		out[i] = e.Position.Commit
	}
	return fmt.Sprint(out)
}
