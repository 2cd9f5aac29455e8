package bus_test

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/bus/bustest"
	"github.com/partnerd/partnerd/internal/testenv"
)

// BenchmarkKafkaPublish compares, on the test broker, one op = one batch of
// small event messages (bus.NewMessage, 14 headers) over 1,000 streams to a
// 12-partition topic:
//
//   - Bus: (*bus.Kafka).Publish of the whole batch in one call;
//   - SaramaSendMessages: a plain Sarama SyncProducer (default config:
//     acks=local, 5 requests in flight, not idempotent) sending the same
//     records with SendMessages;
//   - SaramaSendMessagesBusConfig: the same with the bus's producer config;
//   - WatermillKafka: watermill-kafka's own Publisher (one SendMessage, so
//     one round trip, per message), on a smaller batch.
//
// Run: go test -run '^$' -bench KafkaPublish -benchtime 3x ./bus/
func BenchmarkKafkaPublish(b *testing.B) {
	brokers := testenv.KafkaBrokers(b)
	k := newKafka(b, 12)
	batch := func(n int) []*message.Message {
		msgs := make([]*message.Message, n)
		for i := range msgs {
			msgs[i] = bustest.Event(fmt.Sprintf("partner-bench-p%d", i%1000), uint64(i/1000), `{"name":"Bench Partner","relationship_type":"direct"}`)
		}
		return msgs
	}
	records := func(b *testing.B, topic string, msgs []*message.Message) []*sarama.ProducerMessage {
		recs := make([]*sarama.ProducerMessage, len(msgs))
		for i, m := range msgs {
			var err error
			if recs[i], err = (bus.CloudEventsMarshaler{}).Marshal(topic, m); err != nil {
				b.Fatal(err)
			}
		}
		return recs
	}
	topic := func(b *testing.B) string {
		t := bustest.Name(b, "bench")
		if err := k.EnsureTopics(b.Context(), t); err != nil {
			b.Fatal(err)
		}
		return t
	}
	report := func(b *testing.B, n int) {
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
	}
	const n = 20000
	// Warm the broker up first (its JIT): otherwise whichever case runs
	// first looks slower than it is.
	warm := topic(b)
	for range 3 {
		if err := k.Publish(warm, batch(n)...); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("Bus", func(b *testing.B) {
		t, msgs := topic(b), batch(n)
		if err := k.Publish(t, batch(100)...); err != nil { // warm up: metadata, connections
			b.Fatal(err)
		}
		for b.Loop() {
			if err := k.Publish(t, msgs...); err != nil {
				b.Fatal(err)
			}
		}
		report(b, n)
	})
	sendMessages := func(cfg *sarama.Config) func(b *testing.B) {
		return func(b *testing.B) {
			t, msgs := topic(b), batch(n)
			p, err := sarama.NewSyncProducer(brokers, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = p.Close() }()
			if err := p.SendMessages(records(b, t, batch(100))); err != nil { // warm up
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				recs := records(b, t, msgs)
				b.StartTimer()
				if err := p.SendMessages(recs); err != nil {
					b.Fatal(err)
				}
			}
			report(b, n)
		}
	}
	plain := sarama.NewConfig()
	plain.Version = sarama.V2_8_0_0
	plain.Producer.Return.Successes = true
	b.Run("SaramaSendMessages", sendMessages(plain))
	b.Run("SaramaSendMessagesBusConfig", sendMessages(k.ProducerConfig()))

	b.Run("WatermillKafka", func(b *testing.B) {
		const small = 2000
		t, msgs := topic(b), batch(small)
		cfg := kafka.DefaultSaramaSyncPublisherConfig()
		cfg.Version = sarama.V2_8_0_0
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		p, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: brokers, Marshaler: bus.CloudEventsMarshaler{},
			OverwriteSaramaConfig: cfg}, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = p.Close() }()
		if err := p.Publish(t, batch(10)...); err != nil { // warm up
			b.Fatal(err)
		}
		for b.Loop() {
			if err := p.Publish(t, msgs...); err != nil {
				b.Fatal(err)
			}
		}
		report(b, small)
	})
}
