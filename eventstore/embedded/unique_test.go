package embedded_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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

// BenchmarkAppendUnique: batches of 1000 activity-sized events to 1000
// streams from 8 goroutines, durable.
func BenchmarkAppendUnique(b *testing.B) {
	s, err := embedded.Open(b.TempDir(), embedded.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := []byte(`{"program_id":"bench","activity_id":"b1-1","partner_id":"p1","flavor":"dashboard_viewed","occurred_at":"2026-11-22T04:00:00Z","device":"mobile","platform":"macOS","browser":"Firefox","campaign":"spring-sale","message_id":"m1","source_url":"https://partners.example/dashboard/1","referrer_url":"https://mail.example/inbox","recorded_at":"2026-11-22T04:00:00Z"}`)
	md := []byte(`{"schema":1,"program":"bench","actor":"apikey:0123456789ab","correlation_id":"0b5a3c1e-0000-4000-8000-000000000000"}`)
	var next atomic.Int64
	b.SetParallelism(4) // 8 goroutines on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := next.Add(1)
			evs := make([]eventstore.StreamEvent, 1000)
			for i := range evs {
				evs[i] = eventstore.StreamEvent{Stream: fmt.Sprintf("activity-bench-p%d", i), EventData: eventstore.EventData{
					ID: fmt.Sprintf("%d-%d", k, i), Type: "activity.recorded", Data: data, Metadata: md}}
			}
			if _, err := s.AppendUnique(context.Background(), evs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// The in-memory ID filter is rebuilt from the index at Open and grows past
// its first size: repeats of many IDs written before a reopen are found.
func TestAppendUniqueManyIDsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.Open(dir, embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(from, n int) []eventstore.StreamEvent {
		evs := make([]eventstore.StreamEvent, n)
		for i := range evs {
			evs[i] = uev(fmt.Sprintf("a-%d", (from+i)%7), fmt.Sprintf("id-%d", from+i))
		}
		return evs
	}
	for i := 0; i < 3; i++ {
		if _, err := s.AppendUnique(ctx, batch(i*1000, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	s, err = embedded.Open(dir, embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	land, err := s.AppendUnique(ctx, batch(2500, 1000)) // 500 repeats, 500 new
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for _, l := range land {
		if l.Duplicate {
			dups++
		}
	}
	if dups != 500 {
		t.Fatalf("%d duplicates, want 500", dups)
	}
}
