package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/bus/bustest"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
	"github.com/partnerd/partnerd/relay"
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

func keyed(key string, ids ...string) []*message.Message {
	out := make([]*message.Message, len(ids))
	for i, id := range ids {
		out[i] = message.NewMessage(id, []byte(id))
		out[i].Metadata.Set(bus.PartitionKey, key)
	}
	return out
}

// A subscriber that does not acknowledge must not hold back another
// subscriber of the same topic: the fast one gets every message of several
// publishes, while the batches stay pending until the slow one acked them.
// twoSubscribers makes a bus of that many partitions with two
// subscriptions to topic "t", both ended when the test ends.
func twoSubscribers(t *testing.T, partitions int) (b *bus.InProcess, first, second <-chan *message.Message) {
	t.Helper()
	b = bus.NewInProcess(partitions, nil)
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var err error
	if first, err = b.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if second, err = b.Subscribe(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	return b, first, second
}

func TestInProcessSubscribersMoveIndependently(t *testing.T) {
	b, slow, fast := twoSubscribers(t, 4)
	var pending []*bus.Pending
	for round := 0; round < 3; round++ {
		p, err := b.PublishAsync("t", keyed("stream-1", fmt.Sprintf("r%d-a", round), fmt.Sprintf("r%d-b", round))...)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	var got []string
	for len(got) < 6 {
		select {
		case m := <-fast:
			got = append(got, m.UUID)
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("the fast subscriber got %v while the slow one held its first message", got)
		}
	}
	want := []string{"r0-a", "r0-b", "r1-a", "r1-b", "r2-a", "r2-b"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fast subscriber got %v, want %v", got, want)
	}
	// The slow subscriber has taken nothing: no batch may count as done.
	time.Sleep(50 * time.Millisecond)
	for i, p := range pending {
		select {
		case <-p.Done():
			t.Fatalf("batch %d done before the slow subscriber acked it", i)
		default:
		}
	}
	// The slow one acks the first batch only: that batch is done, not later ones.
	for _, id := range []string{"r0-a", "r0-b"} {
		m := <-slow
		if m.UUID != id {
			t.Fatalf("slow subscriber got %s, want %s", m.UUID, id)
		}
		m.Ack()
	}
	if err := waitDone(t, pending[0]); err != nil {
		t.Fatalf("first batch: %v", err)
	}
	select {
	case <-pending[1].Done():
		t.Fatal("second batch done before the slow subscriber took it")
	default:
	}
}

// The relay checkpoints only past what every subscriber acknowledged: with
// one subscriber stuck on its first message, the checkpoint stays at zero
// while the other subscriber sees every event.
func TestRelayCheckpointWaitsForTheSlowestSubscriber(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for i := 0; i < 40; i++ {
		if _, err := store.Append(context.Background(), fmt.Sprintf("partner-acme-%d", i%5), eventstore.Any,
			[]eventstore.EventData{eventstoretest.Event("partner.created", `{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	b := bus.NewInProcess(4, nil)
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, err := b.Subscribe(ctx, "partnerd.partners")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := b.Subscribe(ctx, "partnerd.partners")
	if err != nil {
		t.Fatal(err)
	}
	cp := &memCheckpoint{}
	r := &relay.Relay{Store: store, Publisher: b, Checkpoints: cp, MaxBatch: 7}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = r.Run(rctx); close(done) }()
	defer func() { stop(); <-done }()

	held := <-slow // taken, not acknowledged yet
	seen := map[string]bool{}
	for len(seen) < 40 {
		select {
		case m := <-fast:
			seen[m.UUID] = true
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("the fast subscriber got %d of 40 events while the slow one held one", len(seen))
		}
	}
	time.Sleep(50 * time.Millisecond)
	if p := cp.get(); p != 0 {
		t.Fatalf("checkpoint %d passed the slow subscriber's unacknowledged message", p)
	}
	held.Ack()
	go func() {
		for m := range slow {
			m.Ack()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for cp.get() != 40 {
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %d once every subscriber acked, want 40", cp.get())
		}
		time.Sleep(time.Millisecond)
	}
}

// A subscriber cancelled with messages queued or in hand fails the pending
// batch (ErrSubscriberGone), so the relay publishes it again; the other
// subscriber is not affected, and a new subscriber gets the republished
// messages.
func TestInProcessCancelledSubscriberFailsItsPendingBatch(t *testing.T) {
	b := bus.NewInProcess(2, nil)
	b.QueueLen = 3 // the publish below also waits for room: cancel must free it
	t.Cleanup(func() { _ = b.Close() })
	bg, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	ctx, cancel := context.WithCancel(bg)
	gone, err := b.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.Subscribe(bg, "t")
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"m1", "m2", "m3", "m4", "m5", "m6"}
	var otherGot []string
	otherDone := make(chan struct{})
	go func() {
		defer close(otherDone)
		for m := range other {
			otherGot = append(otherGot, m.UUID)
			m.Ack()
			if len(otherGot) == len(ids) {
				return
			}
		}
	}()
	res := make(chan error, 1)
	go func() { res <- b.Publish("t", keyed("stream-1", ids...)...) }()
	first := <-gone
	first.Ack()
	<-gone // in hand, never acknowledged
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, bus.ErrSubscriberGone) {
			t.Fatalf("publish = %v, want ErrSubscriberGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("publish hung after a subscriber was cancelled")
	}
	<-otherDone
	if fmt.Sprint(otherGot) != fmt.Sprint(ids) {
		t.Fatalf("the other subscriber got %v, want %v", otherGot, ids)
	}
	// Published again, to the subscribers now live: nothing is lost.
	again, err := b.Subscribe(bg, "t")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for m := range other {
			m.Ack()
		}
	}()
	res2 := make(chan error, 1)
	go func() { res2 <- b.Publish("t", keyed("stream-1", ids...)...) }()
	var got []string
	for len(got) < len(ids) {
		select {
		case m := <-again:
			got = append(got, m.UUID)
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("new subscriber got %v", got)
		}
	}
	if err := <-res2; err != nil {
		t.Fatalf("republish = %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("new subscriber got %v, want %v", got, ids)
	}
}

func waitDone(t *testing.T, p *bus.Pending) error {
	t.Helper()
	select {
	case <-p.Done():
		return p.Err()
	case <-time.After(10 * time.Second):
		t.Fatal("batch not done")
		return nil
	}
}

type memCheckpoint struct {
	mu  sync.Mutex
	pos eventstore.Position
}

func (m *memCheckpoint) Load(context.Context) (eventstore.Position, error) { return m.get(), nil }
func (m *memCheckpoint) Save(_ context.Context, p eventstore.Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos = p
	return nil
}
func (m *memCheckpoint) get() eventstore.Position { m.mu.Lock(); defer m.mu.Unlock(); return m.pos }

// Each subscriber gets the message's whole metadata in a map of its own:
// one consumer changing its copy changes neither the other's nor a
// redelivery's.
func TestInProcessSubscribersGetTheirOwnMetadata(t *testing.T) {
	b, one, two := twoSubscribers(t, 1)
	sent := bus.NewMessage(eventstore.RecordedEvent{ID: "e-1", StreamID: "partner-a-1", Type: "partner.created",
		Position: 7, Data: []byte(`{"x":1}`), Metadata: []byte(`{"program":"a","actor":"u"}`)})
	want := map[string]string(sent.Metadata)
	if len(want) < 10 {
		t.Fatalf("envelope carries only %d metadata keys", len(want))
	}
	p, err := b.PublishAsync("t", sent)
	if err != nil {
		t.Fatal(err)
	}
	recv := func(ch <-chan *message.Message) *message.Message {
		select {
		case m := <-ch:
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
			return nil
		}
	}
	m1 := recv(one)
	if fmt.Sprint(map[string]string(m1.Metadata)) != fmt.Sprint(want) || string(m1.Payload) != `{"x":1}` {
		t.Fatalf("subscriber one got %v %s, want %v", m1.Metadata, m1.Payload, want)
	}
	m1.Metadata.Set(bus.MetaType, "changed")
	m1.Nack() // sent again: a fresh copy
	m2 := recv(two)
	if got := m2.Metadata.Get(bus.MetaType); got != "partner.created" {
		t.Fatalf("subscriber two sees type %q after subscriber one changed its copy", got)
	}
	m2.Ack()
	again := recv(one)
	if got := again.Metadata.Get(bus.MetaType); got != "partner.created" {
		t.Fatalf("the redelivery carries type %q", got)
	}
	again.Ack()
	if err := waitDone(t, p); err != nil {
		t.Fatal(err)
	}
	if got := sent.Metadata.Get(bus.MetaType); got != "partner.created" {
		t.Fatalf("the published message's type became %q", got)
	}
}
