package embedded_test

import (
	"context"
	"sync"
	"testing"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
)

func open(t *testing.T) eventstore.Store {
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) { eventstoretest.Run(t, open) }

func TestSnapshotContract(t *testing.T) { eventstoretest.RunSnapshots(t, open) }

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if _, err := s.Append(ctx, "p-1", eventstore.Any, []eventstore.EventData{eventstoretest.Event("a.b", `{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if h, _ := s2.Head(ctx); h != 5 {
		t.Fatalf("head after reopen = %d, want 5", h)
	}
	// The stream version is recovered from disk, not only from memory.
	if _, err := s2.Append(ctx, "p-1", 3, []eventstore.EventData{eventstoretest.Event("a.b", `{}`)}); err == nil {
		t.Fatal("append at stale version 3 succeeded after reopen")
	}
	res, err := s2.Append(ctx, "p-1", 4, []eventstore.EventData{eventstoretest.Event("a.b", `{}`)})
	if err != nil || res.Version != 5 || res.Position != 6 {
		t.Fatalf("append after reopen = %+v, %v; want version 5 at position 6", res, err)
	}
}

// Concurrent appends share commits: with 64 writers there must be fewer
// commits than appends (group commit), and positions stay dense.
func TestGroupCommit(t *testing.T) {
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := s.Append(context.Background(), "g-1", eventstore.Any, []eventstore.EventData{eventstoretest.Event("a.b", `{}`)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Events.Load() != 1280 || st.Commits.Load() >= 1280 {
		t.Fatalf("events %d in %d commits: want 1280 events in fewer commits", st.Events.Load(), st.Commits.Load())
	}
	evs, _ := s.ReadAll(context.Background(), 0, 2000)
	for i, ev := range evs {
		if ev.Position != eventstore.Position(i+1) || ev.Version != uint64(i) {
			t.Fatalf("event %d at position %d version %d: want dense", i, ev.Position, ev.Version)
		}
	}
}
