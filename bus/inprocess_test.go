package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/bus/bustest"
)

func TestInProcessContract(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Bus {
		b := bus.NewInProcess(8, nil)
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}

// A subscriber that stops mid-batch (the projections shutting down, or
// their router dying) must not let Publish report success for messages it
// never acknowledged: the relay would checkpoint past them and they would
// never be projected.
func TestInProcessSubscriberStopsMidBatch(t *testing.T) {
	b := bus.NewInProcess(4, nil)
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := b.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		first := <-msgs
		first.Ack()
		<-msgs // taken, never acknowledged: the subscriber stops
		cancel()
	}()
	batch := func(ids ...string) []*message.Message {
		out := make([]*message.Message, len(ids))
		for i, id := range ids {
			out[i] = message.NewMessage(id, []byte(id))
			out[i].Metadata.Set(bus.PartitionKey, "stream-1")
		}
		return out
	}
	done := make(chan error, 1)
	go func() { done <- b.Publish("t", batch("m1", "m2", "m3")...) }()
	select {
	case err := <-done:
		if !errors.Is(err, bus.ErrSubscriberGone) {
			t.Fatalf("publish while the subscriber stopped = %v, want ErrSubscriberGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publish hung after its subscriber stopped")
	}
	// No subscriber is left for a topic that had one: not published.
	if err := b.Publish("t", batch("m4")...); !errors.Is(err, bus.ErrSubscriberGone) {
		t.Fatalf("publish with no subscriber left = %v, want ErrSubscriberGone", err)
	}
	// A topic nobody ever subscribed to is not an error (nothing to lose).
	if err := b.Publish("nobody", batch("m5")...); err != nil {
		t.Fatalf("publish to a topic without subscribers = %v", err)
	}
}
