package embedded_test

import (
	"context"
	"sync"
	"testing"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

func uev(stream, id string) eventstore.StreamEvent {
	return eventstore.StreamEvent{Stream: stream, EventData: eventstore.EventData{ID: id, Type: "a.b", Data: []byte(`{}`), Metadata: []byte(`{}`)}}
}

// AppendUnique drops IDs seen before — in the same call, in an earlier
// call, and after the store was closed and reopened — and appends the rest
// in order per stream.
func TestAppendUniqueDropsRepeatsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	land, err := s.AppendUnique(ctx, []eventstore.StreamEvent{uev("a-x", "1"), uev("a-y", "2"), uev("a-x", "1"), uev("a-x", "3")})
	if err != nil {
		t.Fatal(err)
	}
	want := []eventstore.Landing{{Position: 1, Version: 0}, {Position: 2, Version: 0}, {Duplicate: true, Position: 1}, {Position: 3, Version: 1}}
	for i := range want {
		if land[i] != want[i] {
			t.Fatalf("landing %d = %+v, want %+v", i, land[i], want[i])
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = embedded.Open(dir, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	land, err = s.AppendUnique(ctx, []eventstore.StreamEvent{uev("a-x", "3"), uev("a-x", "4")})
	if err != nil {
		t.Fatal(err)
	}
	if !land[0].Duplicate || land[0].Position != 3 || land[1].Duplicate || land[1].Position != 4 || land[1].Version != 2 {
		t.Fatalf("after reopen: %+v", land)
	}
	evs, err := s.ReadStream(ctx, "a-x", 0, eventstore.Forwards, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	if len(ids) != 3 || ids[0] != "1" || ids[1] != "3" || ids[2] != "4" {
		t.Fatalf("stream a-x holds %v, want [1 3 4]", ids)
	}
}

// Concurrent calls sending the same IDs append each ID exactly once.
func TestAppendUniqueConcurrent(t *testing.T) {
	s := open(t).(*embedded.Store)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	appended := 0
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]eventstore.StreamEvent, 100)
			for i := range batch {
				batch[i] = uev("a-s", string(rune('A'+i%50))+"id")
			}
			land, err := s.AppendUnique(ctx, batch)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for _, l := range land {
				if !l.Duplicate {
					appended++
				}
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if appended != 50 {
		t.Fatalf("appended %d events, want 50", appended)
	}
	if h, _ := s.Head(ctx); h != 50 {
		t.Fatalf("head %d, want 50", h)
	}
}
