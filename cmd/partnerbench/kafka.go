package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/relay"
)

type memCheckpoints struct {
	mu  sync.Mutex
	pos eventstore.Position
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
	return nil
}

// benchKafka: relay events/s from the log into a real broker, against a
// plain Sarama producer sending the same records (acks=all, batches of
// 1000) in the same run.
func benchKafka(brokers []string, n int, res Results) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "partnerbench-kafka-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := embedded.Open(dir, embedded.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	evs := partnerEvents(n)
	for _, e := range evs {
		if _, err := st.Append(ctx, e.Stream, eventstore.Any, []eventstore.EventData{{ID: e.ID, Type: e.Type, Data: e.Data,
			Metadata: []byte(`{"schema":1,"program":"bench"}`)}}); err != nil {
			return err
		}
	}
	// Its own topics: the benchmark's records must never reach the consumers
	// of a partnerd (or a test) using the same broker's default topics.
	ns := "partnerbench."
	k, err := bus.NewKafka(bus.KafkaConfig{Brokers: brokers, Partitions: 12, Topics: bus.Topics(), Namespace: ns}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	defer k.Close()
	// Warm up the connections and metadata.
	if err := k.Publish("partnerd.partners", bus.NewMessage(eventstore.RecordedEvent{ID: "warmup", StreamID: "partner-bench-warm",
		Type: "partner.created", Data: []byte(`{}`), Metadata: []byte(`{}`)})); err != nil {
		return err
	}
	head, _ := st.Head(ctx)
	cp := &memCheckpoints{}
	r := &relay.Relay{Store: st, Publisher: k, Checkpoints: cp}
	rctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	go func() { _ = r.Run(rctx) }()
	for r.Position() < head {
		time.Sleep(time.Millisecond)
	}
	d := time.Since(start)
	cancel()
	res["kafka.relay_events_per_s"] = rate(len(evs), d)

	// Baseline: the same records through a plain SyncProducer.
	all, _ := st.ReadAll(ctx, 0, len(evs)+1)
	var m bus.CloudEventsMarshaler
	recs := make([]*sarama.ProducerMessage, 0, len(all))
	for _, ev := range all {
		pm, err := m.Marshal(ns+"partnerd.partners", bus.NewMessage(ev))
		if err != nil {
			return err
		}
		recs = append(recs, pm)
	}
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	start = time.Now()
	for i := 0; i < len(recs); i += 1000 {
		if err := p.SendMessages(recs[i:min(i+1000, len(recs))]); err != nil {
			return fmt.Errorf("plain producer: %w", err)
		}
	}
	base := rate(len(recs), time.Since(start))
	res["kafka.baseline.plain_sarama_per_s"] = base
	res["kafka.relay_ratio_to_plain"] = res["kafka.relay_events_per_s"] / base
	return nil
}

var _ message.Publisher = (*bus.Kafka)(nil)
