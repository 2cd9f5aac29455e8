package bus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/bus/bustest"
	"github.com/partnerd/partnerd/internal/testenv"
)

// newKafka returns a Kafka bus on the test broker. When t ends it is closed
// and the topics it created are deleted.
func newKafka(t testing.TB, partitions int) *bus.Kafka {
	t.Helper()
	brokers := testenv.KafkaBrokers(t)
	k, err := bus.NewKafka(bus.KafkaConfig{Brokers: brokers, Partitions: partitions, ClientID: "partnerd-test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		deleteTopics(t, brokers, bus.CreatedTopics(k))
	})
	return k
}

func deleteTopics(t testing.TB, brokers []string, topics []string) {
	if len(topics) == 0 {
		return
	}
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		t.Logf("deleting test topics: %v", err)
		return
	}
	defer func() { _ = admin.Close() }()
	for _, topic := range topics {
		if err := admin.DeleteTopic(topic); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	}
}

func TestKafkaContract(t *testing.T) {
	testenv.KafkaBrokers(t)
	bustest.Run(t, func(t *testing.T) bustest.Bus { return newKafka(t, 8) })
}

// kcatRecord is one line of `kcat -J`.
type kcatRecord struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       string   `json:"key"`
	Payload   string   `json:"payload"`
	Headers   []string `json:"headers"` // name, value, name, value, …
}

// TestKafkaReadableByKcat checks the wire format with a client we did not
// write: Debian's kcat (librdkafka) reads what Publish wrote and sees the
// stream ID as the key, the event JSON as the value and the CloudEvents
// binary-mode headers.
func TestKafkaReadableByKcat(t *testing.T) {
	kcat := testenv.Kcat(t)
	k := newKafka(t, 3)
	topic := bustest.Name(t, "topic")
	sent := []*message.Message{
		bustest.Event("partner-acme-p1", 0, `{"name":"Acme One"}`),
		bustest.Event("partner-acme-p1", 1, `{"name":"Acme Uno"}`),
		bustest.Event("partner-acme-p2", 0, `{"name":"Acme Two"}`),
	}
	if err := k.Publish(topic, sent...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", testenv.KafkaBrokers(t)[0], "-C", "-t", topic,
		"-o", "beginning", "-e", "-q", "-J")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, stderr.String())
	}
	byID := map[string]kcatRecord{}
	lastOffset := map[string]int64{}
	for line := range strings.Lines(string(out)) {
		var r kcatRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		h := headers(t, r.Headers)
		if prev, ok := lastOffset[r.Key]; ok && r.Offset <= prev {
			t.Errorf("key %s: offset %d after %d", r.Key, r.Offset, prev)
		}
		lastOffset[r.Key] = r.Offset
		byID[h[bus.MetaID]] = r
	}
	if len(byID) != len(sent) {
		t.Fatalf("kcat read %d records, want %d:\n%s", len(byID), len(sent), out)
	}
	for _, m := range sent {
		r, ok := byID[m.Metadata.Get(bus.MetaID)]
		if !ok {
			t.Errorf("kcat did not see %s", m.Metadata.Get(bus.MetaID))
			continue
		}
		if r.Key != m.Metadata.Get(bus.MetaSubject) || r.Payload != string(m.Payload) {
			t.Errorf("record key %q value %q, want %q %q", r.Key, r.Payload, m.Metadata.Get(bus.MetaSubject), m.Payload)
		}
		h := headers(t, r.Headers)
		for name, want := range m.Metadata {
			if h[name] != want {
				t.Errorf("%s: header %s = %q, want %q", r.Key, name, h[name], want)
			}
		}
		if len(h) != len(m.Metadata) {
			t.Errorf("%s: %d headers %v, want exactly the %d metadata entries", r.Key, len(h), h, len(m.Metadata))
		}
		if h["ce_specversion"] != "1.0" || !strings.HasPrefix(h["ce_source"], "partnerd/") {
			t.Errorf("%s: CloudEvents headers %v", r.Key, h)
		}
	}
	if byID[sent[0].Metadata.Get(bus.MetaID)].Partition != byID[sent[1].Metadata.Get(bus.MetaID)].Partition {
		t.Error("one stream's records landed in two partitions")
	}
}

func headers(t *testing.T, flat []string) map[string]string {
	t.Helper()
	if len(flat)%2 != 0 {
		t.Fatalf("odd header list %v", flat)
	}
	h := map[string]string{}
	for i := 0; i < len(flat); i += 2 {
		h[flat[i]] = flat[i+1]
	}
	return h
}

func TestKafkaPing(t *testing.T) {
	k := newKafka(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := k.Publish("partnerd.test.closed", bustest.Event("partner-x-y", 0, "{}")); err == nil {
		t.Error("Publish on a closed bus succeeded")
	}
}

// Backlog counts a consumer group's unconsumed messages: what every
// projection status and readiness check needs with Kafka.
func TestKafkaBacklogOfAGroup(t *testing.T) {
	k := newKafka(t, 1)
	topic := "partnerd.backlog-" + strings.ToLower(testenv.UniquePrefix(t))
	var msgs []*message.Message
	for i := 1; i <= 10; i++ {
		m := message.NewMessage(fmt.Sprintf("m%d", i), []byte("{}"))
		m.Metadata.Set(bus.PartitionKey, "s1")
		m.Metadata.Set(bus.MetaPosition, strconv.Itoa(100+i))
		msgs = append(msgs, m)
	}
	if err := k.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// A group that has consumed nothing has it all ahead of it.
	if pending, err := k.Backlog(ctx, "g-"+topic, []string{topic}); err != nil || pending != 10 {
		t.Fatalf("backlog before consuming = %d, %v; want 10", pending, err)
	}
	sub, err := k.NewSubscriber("g-" + topic)
	if err != nil {
		t.Fatal(err)
	}
	subCtx, cancel := context.WithCancel(ctx)
	ch, err := sub.Subscribe(subCtx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		select {
		case m := <-ch:
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatal("no message")
		}
	}
	// Offsets are committed a moment after the acks.
	deadline := time.Now().Add(20 * time.Second)
	for {
		pending, err := k.Backlog(ctx, "g-"+topic, []string{topic})
		if err == nil && pending == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog after 4 acks = %d, %v; want 6", pending, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A message this process handled counts as done at once, before its
	// offset is committed (here: before it is even acked).
	select {
	case m := <-ch:
		k.Handled("g-"+topic, topic, m)
		if pending, err := k.Backlog(ctx, "g-"+topic, []string{topic}); err != nil || pending != 5 {
			t.Fatalf("backlog after a 5th handled message = %d, %v; want 5", pending, err)
		}
		// A message without an offset (not from this bus) changes nothing.
		k.Handled("g-"+topic, topic, msgs[0])
		if pending, err := k.Backlog(ctx, "g-"+topic, []string{topic}); err != nil || pending != 5 {
			t.Fatalf("backlog after a message without offset = %d, %v; want 5", pending, err)
		}
		// Another group's progress is not this one's.
		if pending, err := k.Backlog(ctx, "other-"+topic, []string{topic}); err != nil || pending != 10 {
			t.Fatalf("backlog of another group = %d, %v; want 10", pending, err)
		}
		m.Ack()
	case <-time.After(30 * time.Second):
		t.Fatal("no 5th message")
	}
	cancel()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
}
