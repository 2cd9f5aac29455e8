package embedded_test

import (
	"context"
	"errors"
	"testing"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
)

// Snapshots are written without fsync, but a clean Close keeps them; the
// log around them is untouched by the reopen.
func TestSnapshotSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "p-1", eventstore.Any, []eventstore.EventData{eventstoretest.Event("a.b", `{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteSnapshot(ctx, "p-1", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteSnapshot(ctx, "p-1", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadSnapshot(ctx, "p-1"); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("ReadSnapshot after Close = %v, want ErrClosed", err)
	}
	if err := s.WriteSnapshot(ctx, "p-1", []byte(`{"v":3}`)); !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("WriteSnapshot after Close = %v, want ErrClosed", err)
	}
	s2, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.ReadSnapshot(ctx, "p-1"); err != nil || string(got) != `{"v":2}` {
		t.Fatalf("snapshot after reopen = %q, %v; want the last one written", got, err)
	}
	if h, _ := s2.Head(ctx); h != 1 {
		t.Fatalf("head after reopen = %d, want 1", h)
	}
	res, err := s2.Append(ctx, "p-1", 0, []eventstore.EventData{eventstoretest.Event("a.b", `{}`)})
	if err != nil || res.Version != 1 || res.Position != 2 {
		t.Fatalf("append after reopen = %+v, %v; want version 1 at position 2", res, err)
	}
}
