package bus

import (
	"errors"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// CloudEventsMarshaler maps Watermill messages to Kafka records following the
// CloudEvents Kafka protocol binding in binary mode: the record key is the
// message's ce_subject (the stream ID, so one stream stays in one partition
// and in order), the value is the payload, and every metadata entry becomes a
// header of the same name (ce_*, content-type, partnerd_*), in key order.
//
// Watermill's own UUID header (_watermill_message_uuid) is written only when
// the UUID differs from ce_id: partnerd's messages carry the event ID in both,
// so their records hold nothing but the CloudEvents binding. Unmarshal takes
// the UUID from that header when present, else from ce_id, so the UUID makes
// the round trip either way.
type CloudEventsMarshaler struct{}

var _ kafka.MarshalerUnmarshaler = CloudEventsMarshaler{}

// Marshal implements kafka.Marshaler.
func (CloudEventsMarshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	if msg.Metadata.Get(kafka.UUIDHeaderKey) != "" {
		return nil, fmt.Errorf("message %s: metadata %s is reserved for the message UUID", msg.UUID, kafka.UUIDHeaderKey)
	}
	keys := make([]string, 0, len(msg.Metadata))
	size := 0
	for k, v := range msg.Metadata {
		keys = append(keys, k)
		size += len(k) + len(v)
	}
	slices.Sort(keys)
	withUUID := msg.UUID != msg.Metadata.Get(MetaID)
	if withUUID {
		size += len(kafka.UUIDHeaderKey) + len(msg.UUID)
	}
	// One buffer holds every header name and value: a batch of a thousand
	// messages would otherwise cost tens of thousands of small allocations.
	buf := make([]byte, 0, size)
	bytesOf := func(s string) []byte {
		start := len(buf)
		buf = append(buf, s...)
		return buf[start:len(buf):len(buf)]
	}
	headers := make([]sarama.RecordHeader, 0, len(keys)+1)
	if withUUID {
		headers = append(headers, sarama.RecordHeader{Key: bytesOf(kafka.UUIDHeaderKey), Value: bytesOf(msg.UUID)})
	}
	for _, k := range keys {
		headers = append(headers, sarama.RecordHeader{Key: bytesOf(k), Value: bytesOf(msg.Metadata[k])})
	}
	rec := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(msg.Payload), Headers: headers}
	if subject := msg.Metadata.Get(PartitionKey); subject != "" {
		rec.Key = sarama.StringEncoder(subject)
	}
	return rec, nil
}

// Unmarshal implements kafka.Unmarshaler.
func (CloudEventsMarshaler) Unmarshal(rec *sarama.ConsumerMessage) (*message.Message, error) {
	if rec == nil {
		return nil, errors.New("nil Kafka record")
	}
	md := make(message.Metadata, len(rec.Headers))
	uuid := ""
	for _, h := range rec.Headers {
		if h == nil {
			continue
		}
		if string(h.Key) == kafka.UUIDHeaderKey {
			uuid = string(h.Value)
			continue
		}
		md[string(h.Key)] = string(h.Value)
	}
	if uuid == "" {
		uuid = md[MetaID]
	}
	msg := message.NewMessage(uuid, rec.Value)
	msg.Metadata = md
	return msg, nil
}
