package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

// longPartner appends n events to one partner's stream, decided by the
// domain: created, a contract proposed and accepted, then rounds of a
// profile edit, a note, a suspension and a reinstatement.
func longPartner(tb testing.TB, store eventstore.Store, n int) string {
	tb.Helper()
	ctx := context.Background()
	var p domain.Partner
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stream := domain.PartnerStream("acme", "long")
	var pending []eventstore.EventData
	decide := func(evs []domain.Event, err error) {
		if err != nil {
			tb.Fatal(err)
		}
		for _, ev := range evs {
			p.Apply(ev)
			data, _ := json.Marshal(ev)
			pending = append(pending, eventstore.EventData{ID: fmt.Sprintf("ev-%d-%d", n, len(pending)), Type: ev.EventType(), Data: data,
				Metadata: []byte(`{"schema":1,"program":"acme","actor":"bench"}`)})
		}
	}
	decide(p.Create(domain.NewPartner{ProgramID: "acme", PartnerID: "long", Profile: domain.Profile{Name: "Long", RelationshipType: "direct", Country: "DE"}}, now))
	decide(p.Propose(domain.SideAdvertiser, "gold", time.Time{}, time.Time{}, time.Time{}, now))
	decide(p.Accept(domain.SidePublisher, now))
	for i := 0; len(pending) < n; i++ {
		now = now.Add(time.Minute)
		switch i % 4 {
		case 0:
			decide(p.UpdateProfile(domain.Patch{"name": json.RawMessage(fmt.Sprintf("%q", fmt.Sprint("Long ", i)))}, now))
		case 1:
			decide(p.AddNote(fmt.Sprint("n", i), "bench", "called them about the spring campaign", now))
		case 2:
			decide(p.Suspend(domain.SideAdvertiser, "review", now))
		case 3:
			decide(p.Reinstate(domain.SideAdvertiser, "ok", now))
		}
	}
	for i := 0; i < len(pending); i += 500 {
		if _, err := store.Append(ctx, stream, eventstore.Any, pending[i:min(i+500, len(pending))]); err != nil {
			tb.Fatal(err)
		}
	}
	return stream
}

// BenchmarkLoadPartner10k: one command's load of a partner with 10 000
// events from the embedded store (read, decode, fold). The figure decides
// whether snapshots pay off (see README, "Snapshots").
func BenchmarkLoadPartner10k(b *testing.B) {
	store, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	stream := longPartner(b, store, 10000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		p, v, _, err := commands.Load[domain.Partner](ctx, store, stream)
		if err != nil || v < 9999 || !p.Exists() {
			b.Fatalf("load: version %d, %v", v, err)
		}
	}
}

// memSnapshots keeps snapshots in a map: the Snapshots port without Redis.
type memSnapshots struct {
	mu   sync.Mutex
	m    map[string][]byte
	puts int
	gets int
}

func (s *memSnapshots) ReadSnapshot(_ context.Context, stream string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	return s.m[stream], nil
}

func (s *memSnapshots) WriteSnapshot(_ context.Context, stream string, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[stream] = b
	s.puts++
	return nil
}

// BenchmarkLoadPartner10kSnapshot: the same load starting from a snapshot
// taken 0 or 499 events before the end (499: the most a load folds before
// it takes a new one), kept where the app keeps it: in the embedded store,
// beside the log.
func BenchmarkLoadPartner10kSnapshot(b *testing.B) {
	for _, tail := range []int{0, 499} {
		b.Run(fmt.Sprint("tail=", tail), func(b *testing.B) {
			store, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			stream := longPartner(b, store, 10000)
			ctx := context.Background()
			snaps := &memSnapshots{}
			// Snapshot at version 10000-tail: load a copy of the stream cut there.
			cut, err := embedded.Open(b.TempDir(), embedded.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			evs, _ := store.ReadStream(ctx, stream, 0, eventstore.Forwards, 10000-tail)
			data := make([]eventstore.EventData, len(evs))
			for i, e := range evs {
				data[i] = eventstore.EventData{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}
			}
			for i := 0; i < len(data); i += 500 {
				if _, err := cut.Append(ctx, stream, eventstore.Any, data[i:min(i+500, len(data))]); err != nil {
					b.Fatal(err)
				}
			}
			if _, _, _, err := commands.LoadPartner(ctx, cut, snaps, 1, stream); err != nil || snaps.puts != 1 {
				b.Fatalf("snapshot: %v (%d puts)", err, snaps.puts)
			}
			_ = cut.Close()
			if err := store.WriteSnapshot(ctx, stream, snaps.m[stream]); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				p, v, _, err := commands.LoadPartner(ctx, store, store, 1_000_000, stream)
				if err != nil || v != 9999 || !p.Exists() {
					b.Fatalf("load: version %d, %v", v, err)
				}
			}
		})
	}
}
