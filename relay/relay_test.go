package relay_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
	"github.com/partnerd/partnerd/relay"
)

type memCheckpoints struct {
	mu    sync.Mutex
	pos   eventstore.Position
	saves []eventstore.Position
}

func (m *memCheckpoints) Load(context.Context) (eventstore.Position, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos, nil
}

func (m *memCheckpoints) Save(_ context.Context, p eventstore.Position) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pos = p
	m.saves = append(m.saves, p)
	return nil
}

func (m *memCheckpoints) get() eventstore.Position {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos
}

// flaky fails its first `failures` publishes.
type flaky struct {
	message.Publisher
	failures atomic.Int32
}

func (f *flaky) Publish(topic string, msgs ...*message.Message) error {
	if f.failures.Add(-1) >= 0 {
		return errors.New("broker unavailable")
	}
	return f.Publisher.Publish(topic, msgs...)
}

func appendN(t *testing.T, s eventstore.Store, n int) {
	for i := 0; i < n; i++ {
		if _, err := s.Append(context.Background(), fmt.Sprintf("partner-acme-%d", i%7), eventstore.Any,
			[]eventstore.EventData{eventstoretest.Event("partner.created", fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// collect subscribes to the partners topic and records message positions.
func collect(t *testing.T, b *bus.InProcess) (func() []eventstore.Position, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := b.Subscribe(ctx, "partnerd.partners")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []eventstore.Position
	go func() {
		for m := range ch {
			env, err := bus.ParseMessage(m)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			got = append(got, env.Position)
			mu.Unlock()
			m.Ack()
		}
	}()
	return func() []eventstore.Position {
		mu.Lock()
		defer mu.Unlock()
		return append([]eventstore.Position(nil), got...)
	}, cancel
}

func TestRelayPublishesEverythingAndCheckpointsAfterAck(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	appendN(t, store, 50)
	b := bus.NewInProcess(4, watermill.NopLogger{})
	got, stopSub := collect(t, b)
	defer stopSub()
	pub := &flaky{Publisher: b}
	pub.failures.Store(3)
	cp := &memCheckpoints{}
	r := &relay.Relay{Store: store, Publisher: pub, Checkpoints: cp}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()

	waitFor(t, func() bool { return cp.get() == 50 })
	appendN(t, store, 25) // live events after catch-up
	waitFor(t, func() bool { return cp.get() == 75 })
	cancel()
	<-done

	positions := got()
	seen := map[eventstore.Position]int{}
	for _, p := range positions {
		seen[p]++
	}
	for p := eventstore.Position(1); p <= 75; p++ {
		if seen[p] == 0 {
			t.Fatalf("position %d never published", p)
		}
	}
	for _, s := range cp.saves {
		if int(s) > len(positions) && seen[s] == 0 {
			t.Fatalf("checkpoint %d saved before its event was delivered", s)
		}
	}
	if pub.failures.Load() >= 0 {
		t.Fatal("the failing publishes were never tried")
	}
}

func TestRelayResumesFromCheckpoint(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	appendN(t, store, 30)
	b := bus.NewInProcess(4, watermill.NopLogger{})
	got, stopSub := collect(t, b)
	defer stopSub()
	cp := &memCheckpoints{pos: 20} // an earlier run published 1..20
	r := &relay.Relay{Store: store, Publisher: b, Checkpoints: cp}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	waitFor(t, func() bool { return cp.get() == 30 })
	positions := got()
	if len(positions) != 10 {
		t.Fatalf("published %d messages after resuming at 20, want 10 (21..30): %v", len(positions), positions)
	}
	for _, p := range positions {
		if p <= 20 {
			t.Fatalf("re-published %d, which was before the checkpoint", p)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// gate blocks every Publish until open is closed, and says when the first
// one started and the position of its last message.
type gate struct {
	message.Publisher
	started chan struct{}
	once    sync.Once
	open    chan struct{}
	last    eventstore.Position
}

func (g *gate) Publish(topic string, msgs ...*message.Message) error {
	g.once.Do(func() {
		if env, err := bus.ParseMessage(msgs[len(msgs)-1]); err == nil {
			g.last = env.Position
		}
		close(g.started)
	})
	<-g.open
	return g.Publisher.Publish(topic, msgs...)
}

// ctxCheckpoints refuses a save with an ended context, as Redis does.
type ctxCheckpoints struct{ memCheckpoints }

func (c *ctxCheckpoints) Save(ctx context.Context, p eventstore.Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.memCheckpoints.Save(ctx, p)
}

// A stop while a batch is being published lets it finish and be
// checkpointed: cut off, a batch the broker took would be published again
// by the next start (a resent tail on every deploy).
func TestRelayStopCheckpointsTheBatchInFlight(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	appendN(t, store, 20)
	// gate hides the in-process bus's asynchronous publishing: the relay
	// publishes to it as it does to Kafka.
	pub := &gate{Publisher: bus.NewInProcess(4, watermill.NopLogger{}), started: make(chan struct{}), open: make(chan struct{})}
	cp := &ctxCheckpoints{}
	r := &relay.Relay{Store: store, Publisher: pub, Checkpoints: cp}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	<-pub.started
	cancel()
	time.Sleep(100 * time.Millisecond) // the broker acknowledges after the stop
	close(pub.open)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not stop")
	}
	if got := cp.get(); got == 0 || got != pub.last {
		t.Fatalf("checkpoint after the stop = %d, want %d (the end of the batch in flight)", got, pub.last)
	}
}
