package relay_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
	"github.com/partnerd/partnerd/eventstore/kurrentdb"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/relay"
)

// recorder publishes to an in-process bus (synchronously, or through its
// async path when async) and records the topic and stream of every message.
type recorder struct {
	b    *bus.InProcess
	mu   sync.Mutex
	seen []string // "topic stream@position"
}

func (r *recorder) note(t *testing.T, topic string, msgs []*message.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		env, err := bus.ParseMessage(m)
		if err != nil {
			t.Error(err)
		}
		r.seen = append(r.seen, fmt.Sprintf("%s %s@%d", topic, env.Stream, env.Position))
	}
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

type syncRecorder struct {
	*recorder
	t *testing.T
}

func (s syncRecorder) Publish(topic string, msgs ...*message.Message) error {
	s.note(s.t, topic, msgs)
	return s.b.Publish(topic, msgs...)
}

func (s syncRecorder) Close() error { return nil }

type asyncRecorder struct{ syncRecorder }

func (a asyncRecorder) PublishAsync(topic string, msgs ...*message.Message) (*bus.Pending, error) {
	a.note(a.t, topic, msgs)
	return a.b.PublishAsync(topic, msgs...)
}

// runRelay runs a relay over store until its checkpoint reaches the head,
// and returns what it published.
func runRelay(t *testing.T, store eventstore.Store, async bool) ([]string, *relay.Relay) {
	t.Helper()
	rec := &recorder{b: bus.NewInProcess(2, watermill.NopLogger{})}
	var pub message.Publisher = syncRecorder{rec, t}
	if async {
		pub = asyncRecorder{syncRecorder{rec, t}}
	}
	cp := &memCheckpoints{}
	r := &relay.Relay{Store: store, Publisher: pub, Checkpoints: cp}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return cp.get() >= head })
	return rec.got(), r
}

// The relay never publishes a snapshot stream, even from a store that
// shows them in its log: here an embedded store holding them as plain
// streams, as it does behind the esdbserver test server. Its checkpoint
// still moves past them.
func TestRelaySkipsSnapshotStreams(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprint("async=", async), func(t *testing.T) {
			store, err := embedded.Open(t.TempDir(), embedded.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ctx := context.Background()
			add := func(stream, typ string) eventstore.AppendResult {
				res, err := store.Append(ctx, stream, eventstore.Any, []eventstore.EventData{eventstoretest.Event(typ, `{}`)})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			p1 := add("partner-acme-1", "partner.created")
			add(eventstore.SnapshotStream("partner-acme-1"), "partnerd.snapshot")
			add("$$"+eventstore.SnapshotStream("partner-acme-1"), "$metadata")
			p2 := add("partner-acme-1", "partner.profile_updated")
			add(eventstore.SnapshotStream("partner-acme-1"), "partnerd.snapshot") // the log's last event
			got, r := runRelay(t, store, async)
			want := []string{fmt.Sprintf("partnerd.partners partner-acme-1@%d", p1.Position), fmt.Sprintf("partnerd.partners partner-acme-1@%d", p2.Position)}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("published %v\nwant only the partner events %v", got, want)
			}
			if r.Position() != 5 || r.Published() != 2 {
				t.Fatalf("relay at %d after %d published; want the checkpoint past the last snapshot (5), 2 published", r.Position(), r.Published())
			}
		})
	}
}

// Through the KurrentDB adapter (over real gRPC to the in-process server),
// snapshots written beside partner streams never reach the bus.
func TestRelayOverKurrentDBPublishesNoSnapshots(t *testing.T) {
	esdbURL, backing := testenv.KurrentDB(t)
	store, err := kurrentdb.Open(esdbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	var want []string
	for i := 0; i < 6; i++ {
		stream := fmt.Sprintf("partner-acme-%d", i%2)
		res, err := store.Append(ctx, stream, eventstore.Any, []eventstore.EventData{eventstoretest.Event("partner.created", `{}`)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("partnerd.partners %s@%d", stream, res.Position))
		if err := store.WriteSnapshot(ctx, stream, fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if all, _ := backing.ReadAll(ctx, 0, 100); len(all) != 6+6+2 {
		t.Fatalf("the server's log holds %d events; want 6 partner events, 6 snapshots and 2 metadata events", len(all))
	}
	got, r := runRelay(t, store, true)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("published %v\nwant only the partner events %v", got, want)
	}
	if r.Published() != 6 {
		t.Fatalf("published %d, want 6", r.Published())
	}
}

// Republish skips snapshot streams too, whatever the category.
func TestRepublishSkipsSnapshotStreams(t *testing.T) {
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	for _, stream := range []string{"partner-acme-1", eventstore.SnapshotStream("partner-acme-1"), "$$" + eventstore.SnapshotStream("partner-acme-1"), "partner-acme-2"} {
		if _, err := store.Append(ctx, stream, eventstore.Any, []eventstore.EventData{eventstoretest.Event("x.y", `{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, category := range []string{"", "snapshot", "partnerd.snapshot"} {
		rec := &recorder{b: bus.NewInProcess(2, watermill.NopLogger{})}
		n, err := relay.Republish(ctx, store, syncRecorder{rec, t}, relay.RepublishRange{Category: category}, nil)
		var want []string
		if category == "" {
			want = []string{"partnerd.partners partner-acme-1@1", "partnerd.partners partner-acme-2@4"}
		}
		if err != nil || n != uint64(len(want)) || fmt.Sprint(rec.got()) != fmt.Sprint(want) {
			t.Fatalf("republish category %q: %d, %v, published %v; want %v", category, n, err, rec.got(), want)
		}
	}
}
