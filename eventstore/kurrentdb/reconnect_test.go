package kurrentdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
	"github.com/partnerd/partnerd/eventstore/kurrentdb/esdbserver"
)

// The server goes away and comes back on the same address: calls fail
// meanwhile, the subscription resumes after the last event it delivered, and
// the adapter replaces the client that gave up reconnecting.
func TestServerRestart(t *testing.T) {
	b := start(t, "esdb")
	ctx := testCtx(t)
	var want []string
	appendVia := func(s eventstore.Store) {
		t.Helper()
		ev := eventstoretest.Event("r.x", `{}`)
		if _, err := s.Append(ctx, "restart-1", eventstore.Any, []eventstore.EventData{ev}); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev.ID)
	}
	for range 3 {
		appendVia(b.store)
	}
	got := make(chan eventstore.RecordedEvent, 100)
	done := make(chan error, 1)
	go func() {
		done <- b.store.Subscribe(ctx, 0, func(ev eventstore.RecordedEvent) error { got <- ev; return nil })
	}()
	var seen []eventstore.RecordedEvent
	receive := func(n int) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for len(seen) < n {
			select {
			case ev := <-got:
				seen = append(seen, ev)
			case err := <-done:
				t.Fatalf("Subscribe returned %v", err)
			case <-timeout:
				t.Fatalf("received %d of %d events", len(seen), n)
			}
		}
	}
	receive(3)

	b.stop()
	for range 3 {
		appendVia(b.backing)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := b.store.Head(short); err == nil {
		t.Fatal("Head succeeded with the server down")
	}
	time.Sleep(1500 * time.Millisecond) // long enough for the client to give up

	_, stop, err := esdbserver.StartOn(b.addr, b.backing)
	if err != nil {
		t.Fatal(err)
	}
	b.stop = stop
	receive(6)
	appendVia(b.store)
	receive(7)
	for i, ev := range seen {
		if ev.ID != want[i] {
			t.Fatalf("event %d = %s, want %s", i, ev.ID, want[i])
		}
	}
	select {
	case ev := <-got:
		t.Fatalf("extra event %s", ev.ID)
	case <-time.After(100 * time.Millisecond):
	}
}
