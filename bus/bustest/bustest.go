// Package bustest is the contract every partnerd bus meets, as a test suite
// shared by the in-process bus and the Kafka bus: messages arrive with their
// UUID, payload and every metadata entry; one key's messages arrive in
// publish order even when they are handled concurrently, as the Watermill
// router does; every consumer group gets every message; a nacked message is
// delivered again before anything after it on its key.
//
// Each check uses topics and groups of its own (random names), so it can run
// against a shared broker.
package bustest

import (
	"bytes"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
)

// Bus is what the suite checks: app.Bus.
type Bus interface {
	message.Publisher
	NewSubscriber(group string) (message.Subscriber, error)
}

// Timeout bounds every wait of the suite (a first consumer-group join on a
// broker can take seconds).
var Timeout = 60 * time.Second

// Run checks the contract. newBus makes a fresh bus for one check and
// registers its Close with t.Cleanup. The suite never closes a subscriber
// itself (the in-process bus is its own subscriber): it cancels the
// subscription's context when the check ends, before the bus is closed.
func Run(t *testing.T, newBus func(t *testing.T) Bus) {
	t.Run("MetadataRoundTrip", func(t *testing.T) { t.Parallel(); testMetadata(t, newBus(t)) })
	t.Run("PerKeyOrder", func(t *testing.T) { t.Parallel(); testOrder(t, newBus(t)) })
	t.Run("EveryGroupGetsEverything", func(t *testing.T) { t.Parallel(); testGroups(t, newBus(t)) })
	t.Run("NackRedelivers", func(t *testing.T) { t.Parallel(); testNack(t, newBus(t)) })
}

func testMetadata(t *testing.T, b Bus) {
	topic := Name(t, "topic")
	ch := Subscribe(t, b, Name(t, "group"), topic)
	sent := []*message.Message{Event("partner-acme-p1", 0, `{"name":"One"}`), Event("partner-acme-p1", 1, `{"name":"Two"}`),
		Event("partner-acme-p2", 0, `{}`)}
	plain := message.NewMessage("plain-uuid-1", []byte("not json"))
	plain.Metadata.Set(bus.MetaSubject, "partner-acme-p3")
	plain.Metadata.Set("x-extra", "kept")
	plain.Metadata.Set("x-empty", "")
	sent = append(sent, plain)

	var mu sync.Mutex
	got := map[string]*message.Message{}
	Consume(t, ch, func(m *message.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		got[m.UUID] = m
		return true
	})
	WaitPublished(t, PublishAsync(b, topic, sent...))
	Wait(t, "every message", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= len(sent) })

	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(sent) {
		t.Errorf("received %d distinct UUIDs, sent %d", len(got), len(sent))
	}
	required := []string{bus.MetaSpecVersion, bus.MetaID, bus.MetaType, bus.MetaSource, bus.MetaSubject, bus.MetaTime,
		bus.MetaContentType, bus.MetaPosition, bus.MetaVersion, bus.MetaProgram, bus.MetaSchema, bus.MetaActor,
		bus.MetaCorrelation, bus.MetaCausation}
	for i, s := range sent {
		r := got[s.UUID]
		if r == nil {
			t.Errorf("message %s (UUID %s) not received", s.Metadata.Get(bus.MetaID), s.UUID)
			continue
		}
		if !bytes.Equal(r.Payload, s.Payload) {
			t.Errorf("message %s: payload %q, sent %q", s.UUID, r.Payload, s.Payload)
		}
		if !maps.Equal(r.Metadata, s.Metadata) {
			t.Errorf("message %s: metadata\n got  %v\n sent %v", s.UUID, r.Metadata, s.Metadata)
		}
		if s == plain {
			continue
		}
		for _, k := range required {
			if r.Metadata.Get(k) == "" {
				t.Errorf("message %d: metadata %s missing", i, k)
			}
		}
		if _, err := bus.ParseMessage(r); err != nil {
			t.Errorf("ParseMessage of received message %d: %v", i, err)
		}
	}
}

func testOrder(t *testing.T, b Bus) {
	const total, keys = 1000, 37
	topic := Name(t, "topic")
	ch := Subscribe(t, b, Name(t, "group"), topic)
	msgs := make([]*message.Message, total)
	want := map[string]int{}
	for i := range msgs {
		key := fmt.Sprintf("stream-%02d", (i*7)%keys)
		msgs[i] = message.NewMessage(fmt.Sprintf("order-%04d", i), []byte(strconv.Itoa(i)))
		msgs[i].Metadata.Set(bus.MetaSubject, key)
		msgs[i].Metadata.Set("bustest_seq", strconv.Itoa(want[key]))
		want[key]++
	}
	var mu sync.Mutex
	next := map[string]int{}
	received := 0
	var failures []string
	Consume(t, ch, func(m *message.Message) bool {
		key := m.Metadata.Get(bus.MetaSubject)
		seq, _ := strconv.Atoi(m.Metadata.Get("bustest_seq"))
		if seq%3 == 0 {
			time.Sleep(time.Duration(seq%5) * 100 * time.Microsecond) // let other keys overtake
		}
		mu.Lock()
		defer mu.Unlock()
		if seq != next[key] && len(failures) < 10 {
			failures = append(failures, fmt.Sprintf("%s: got #%d, expected #%d", key, seq, next[key]))
		}
		next[key] = seq + 1
		received++
		return true
	})
	WaitPublished(t, PublishAsync(b, topic, msgs...))
	Wait(t, "every message", func() bool { mu.Lock(); defer mu.Unlock(); return received >= total })
	time.Sleep(100 * time.Millisecond) // a stray extra delivery would show up here
	mu.Lock()
	defer mu.Unlock()
	for _, f := range failures {
		t.Error("out of order: " + f)
	}
	if received != total {
		t.Errorf("handled %d messages, published %d", received, total)
	}
	for k, n := range want {
		if next[k] != n {
			t.Errorf("%s: last message handled #%d, want #%d", k, next[k]-1, n-1)
		}
	}
}

func testGroups(t *testing.T, b Bus) {
	const total = 200
	topic := Name(t, "topic")
	var msgs []*message.Message
	for i := range total {
		msgs = append(msgs, Event(fmt.Sprintf("partner-acme-p%d", i%10), uint64(i/10), "{}"))
	}
	var mu sync.Mutex
	seen := []map[string]int{{}, {}}
	for g := range seen {
		ch := Subscribe(t, b, Name(t, "group"+strconv.Itoa(g)), topic)
		Consume(t, ch, func(m *message.Message) bool {
			mu.Lock()
			defer mu.Unlock()
			seen[g][m.UUID]++
			return true
		})
	}
	WaitPublished(t, PublishAsync(b, topic, msgs...))
	Wait(t, "both groups to get every message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[0]) >= total && len(seen[1]) >= total
	})
	mu.Lock()
	defer mu.Unlock()
	for g, s := range seen {
		for _, m := range msgs {
			if s[m.UUID] != 1 {
				t.Errorf("group %d received message %s %d times", g, m.UUID, s[m.UUID])
			}
		}
	}
}

func testNack(t *testing.T, b Bus) {
	topic := Name(t, "topic")
	first, second := Event("partner-acme-nack", 0, `{"n":1}`), Event("partner-acme-nack", 1, `{"n":2}`)
	ch := Subscribe(t, b, Name(t, "group"), topic)
	var mu sync.Mutex
	var log []string
	Consume(t, ch, func(m *message.Message) bool {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, m.UUID)
		return !(m.UUID == first.UUID && len(log) == 1) // nack the first delivery only
	})
	WaitPublished(t, PublishAsync(b, topic, first, second))
	Wait(t, "the redelivery and the next message", func() bool { mu.Lock(); defer mu.Unlock(); return len(log) >= 3 })
	time.Sleep(200 * time.Millisecond) // a stray extra delivery would show up here
	mu.Lock()
	defer mu.Unlock()
	want := []string{first.UUID, first.UUID, second.UUID}
	if fmt.Sprint(log) != fmt.Sprint(want) {
		t.Errorf("deliveries %v, want %v (nacked, redelivered, then the next one)", log, want)
	}
}
