package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
)

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// Name returns a random topic or group name for the running test, made of
// Kafka-safe characters.
func Name(t testing.TB, kind string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random name: %v", err)
	}
	return fmt.Sprintf("bustest.%s.%s.%s", kind, unsafeChars.ReplaceAllString(t.Name(), "_"), hex.EncodeToString(b[:]))
}

// Event returns a message made by bus.NewMessage from a synthetic event of
// stream with every optional metadata field set.
func Event(stream string, version uint64, data string) *message.Message {
	var b [8]byte
	_, _ = rand.Read(b[:])
	meta, _ := json.Marshal(map[string]any{"schema": 2, "program": "bustest", "actor": "user:alice",
		"correlation_id": "corr-" + hex.EncodeToString(b[:4]), "causation_id": "cause-" + hex.EncodeToString(b[4:])})
	return bus.NewMessage(eventstore.RecordedEvent{
		ID: "ev-" + hex.EncodeToString(b[:]), StreamID: stream, Type: "bustest.happened", Version: version,
		Position: eventstore.Position(1000 + version), RecordedAt: time.Now(), Data: []byte(data), Metadata: meta,
	})
}

// Subscribe subscribes to topic in group; the subscription ends with the test.
func Subscribe(t testing.TB, b Bus, group, topic string) <-chan *message.Message {
	t.Helper()
	sub, err := b.NewSubscriber(group)
	if err != nil {
		t.Fatalf("NewSubscriber(%s): %v", group, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("Subscribe(%s) in group %s: %v", topic, group, err)
	}
	return ch
}

// Consume hands each message of ch to handle in its own goroutine, as the
// Watermill router does, and acks it when handle returns true, else nacks
// it. It stops when the test ends.
func Consume(t testing.TB, ch <-chan *message.Message, handle func(*message.Message) bool) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(done); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case m, ok := <-ch:
				if !ok {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if handle(m) {
						m.Ack()
					} else {
						m.Nack()
					}
				}()
			case <-done:
				return
			}
		}
	}()
}

// PublishAsync publishes in the background (the in-process bus blocks until
// subscribers acked) and returns the result.
func PublishAsync(b Bus, topic string, msgs ...*message.Message) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- b.Publish(topic, msgs...) }()
	return errc
}

// Wait waits for cond, checking every few milliseconds, failing after Timeout.
func Wait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", Timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitPublished waits for a PublishAsync result.
func WaitPublished(t testing.TB, errc <-chan error) {
	t.Helper()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
	case <-time.After(Timeout):
		t.Fatalf("Publish did not return within %s", Timeout)
	}
}
