package bus_test

import (
	"maps"
	"testing"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/bus/bustest"
)

// roundTrip marshals m and reads it back as a consumer would.
func roundTrip(t *testing.T, m *message.Message) (*sarama.ProducerMessage, *message.Message) {
	t.Helper()
	rec, err := bus.CloudEventsMarshaler{}.Marshal("partnerd.partners", m)
	if err != nil {
		t.Fatal(err)
	}
	value, _ := rec.Value.Encode()
	in := &sarama.ConsumerMessage{Topic: rec.Topic, Value: value}
	if rec.Key != nil {
		in.Key, _ = rec.Key.Encode()
	}
	for i := range rec.Headers {
		in.Headers = append(in.Headers, &rec.Headers[i])
	}
	back, err := bus.CloudEventsMarshaler{}.Unmarshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return rec, back
}

func TestCloudEventsMarshalerEvent(t *testing.T) {
	m := bustest.Event("partner-acme-p1", 3, `{"name":"Acme"}`)
	rec, back := roundTrip(t, m)
	if key, _ := rec.Key.Encode(); string(key) != "partner-acme-p1" {
		t.Errorf("key %q, want the stream ID", key)
	}
	var names []string
	for _, h := range rec.Headers {
		names = append(names, string(h.Key))
	}
	if len(names) != len(m.Metadata) {
		t.Errorf("headers %v: want exactly the %d metadata entries (no watermill UUID header)", names, len(m.Metadata))
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("headers not in key order: %v", names)
		}
	}
	if back.UUID != m.UUID || string(back.Payload) != string(m.Payload) || !maps.Equal(back.Metadata, m.Metadata) {
		t.Errorf("round trip: %s %s %v, want %s %s %v", back.UUID, back.Payload, back.Metadata, m.UUID, m.Payload, m.Metadata)
	}
}

func TestCloudEventsMarshalerPlainMessage(t *testing.T) {
	m := message.NewMessage("uuid-1", []byte("x"))
	m.Metadata.Set("a", "b")
	rec, back := roundTrip(t, m)
	if rec.Key != nil {
		t.Errorf("key %v without ce_subject, want none", rec.Key)
	}
	if string(rec.Headers[0].Key) != kafka.UUIDHeaderKey {
		t.Errorf("first header %s, want %s (UUID differs from ce_id)", rec.Headers[0].Key, kafka.UUIDHeaderKey)
	}
	if back.UUID != "uuid-1" || !maps.Equal(back.Metadata, m.Metadata) {
		t.Errorf("round trip: %s %v", back.UUID, back.Metadata)
	}
	m.Metadata.Set(kafka.UUIDHeaderKey, "x")
	if _, err := (bus.CloudEventsMarshaler{}).Marshal("t", m); err == nil {
		t.Error("metadata with the reserved UUID key was accepted")
	}
}
