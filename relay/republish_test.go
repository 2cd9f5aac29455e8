package relay_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
	"github.com/partnerd/partnerd/relay"
)

func TestRepublishKeepsIDsAndRange(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	appendN(t, store, 30) // partner streams, positions 1..30
	if _, err := store.Append(ctx, "program-acme", eventstore.Any, []eventstore.EventData{eventstoretest.Event("program.created", `{}`)}); err != nil {
		t.Fatal(err)
	}
	b := bus.NewInProcess(2, watermill.NopLogger{})
	got, stop := collect(t, b)
	defer stop()
	var calls int
	n, err := relay.Republish(ctx, store, b, relay.RepublishRange{From: 10, To: 20, Category: "partner"}, func(done, total eventstore.Position, _ uint64) {
		calls++
		if total != 20 || done > total {
			t.Errorf("progress %d/%d", done, total)
		}
	})
	if err != nil || n != 11 || calls == 0 {
		t.Fatalf("republished %d, %v, %d progress calls; want 11 events (10..20)", n, err, calls)
	}
	waitFor(t, func() bool { return len(got()) == 11 })
	for _, p := range got() {
		if p < 10 || p > 20 {
			t.Fatalf("position %d outside 10..20", p)
		}
	}
	// IDs are the stored event IDs.
	evs, _ := store.ReadAll(ctx, 9, 1)
	ch, _ := b.Subscribe(ctx, "partnerd.partners")
	go func() { _, _ = relay.Republish(ctx, store, b, relay.RepublishRange{From: 10, To: 10}, nil) }()
	m := <-ch
	m.Ack()
	if m.UUID != evs[0].ID || m.Metadata.Get(bus.MetaID) != evs[0].ID {
		t.Fatalf("republished message id %s / ce_id %s, want the event ID %s", m.UUID, m.Metadata.Get(bus.MetaID), evs[0].ID)
	}
	// The programs category only.
	n, err = relay.Republish(ctx, store, b, relay.RepublishRange{Category: "partnerd.programs"}, nil)
	if err != nil || n != 1 {
		t.Fatalf("programs only: %d, %v", n, err)
	}
}
