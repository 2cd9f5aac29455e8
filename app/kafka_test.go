package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/testenv"
)

// dbKafka is the Redis database of TestKafkaEndToEnd: partnerd's global keys
// (relay checkpoint, generations) are not prefixed per test.
const dbKafka = 5

// kafkaTestRedisURL returns the URL of database dbKafka on the test Redis, flushed.
func kafkaTestRedisURL(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatalf("%s: %v", testenv.RedisURLEnv, err)
	}
	u.Path = "/" + strconv.Itoa(dbKafka)
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatalf("%s: %v", testenv.RedisURLEnv, err)
	}
	opt.DisableIdentity = true
	c := redis.NewClient(opt)
	defer func() { _ = c.Close() }()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("FLUSHDB %d: %v", dbKafka, err)
	}
	return u.String()
}

// newestOffsets returns the next offset of every partition of topic.
func newestOffsets(t *testing.T, client sarama.Client, topic string) map[int32]int64 {
	t.Helper()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	offsets := map[int32]int64{}
	for _, p := range parts {
		// A topic the broker just auto-created may have no leader yet
		// ("not the leader for some partition"): retry with fresh metadata.
		deadline := time.Now().Add(15 * time.Second)
		for {
			if offsets[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("offset of %s/%d: %v", topic, p, err)
			}
			time.Sleep(200 * time.Millisecond)
			_ = client.RefreshMetadata(topic)
		}
	}
	return offsets
}

// findRecord reads topic from offsets with a plain Sarama consumer (no
// group) until it meets a record with key, and returns it.
func findRecord(t *testing.T, client sarama.Client, topic string, offsets map[int32]int64, key string) *sarama.ConsumerMessage {
	t.Helper()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = consumer.Close() }()
	found := make(chan *sarama.ConsumerMessage, 1)
	for p, off := range offsets {
		pc, err := consumer.ConsumePartition(topic, p, off)
		if err != nil {
			t.Fatalf("consume %s/%d from %d: %v", topic, p, off, err)
		}
		defer func() { _ = pc.Close() }()
		go func() {
			for m := range pc.Messages() {
				if string(m.Key) == key {
					select {
					case found <- m:
					default:
					}
				}
			}
		}()
	}
	select {
	case m := <-found:
		return m
	case <-time.After(30 * time.Second):
		t.Fatalf("no record with key %s on %s within 30s", key, topic)
		return nil
	}
}

// TestKafkaEndToEnd runs partnerd on a real Kafka and a real Redis: a
// partner created by a command reaches the read model through the topic
// partnerd.partners and the projection's consumer group, and the record on
// the topic is keyed by the stream ID and carries the event ID as ce_id.
// The topics are shared with other runs on the same broker, so everything is
// told apart by a random program ID.
func TestKafkaEndToEnd(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cfg := app.Defaults()
	cfg.Data = t.TempDir()
	cfg.RedisURL = kafkaTestRedisURL(t)
	cfg.KafkaBrokers = brokers
	// Own topics and consumer groups: groups of the default names keep
	// their offsets on a broker that outlives runs, so anything else
	// published there (another run, a benchmark) would be consumed first.
	cfg.KafkaNamespace = testenv.UniquePrefix(t) + "."
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	program := "kafka_" + hex.EncodeToString(rnd[:])
	cfg.BootstrapProgram = program
	cfg.BootstrapKey = "kafka-test-key-0123456789"

	a, err := app.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	// app.New created the topics; remember where partnerd.partners ends now.
	scfg := sarama.NewConfig()
	scfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	topic := cfg.KafkaNamespace + bus.Topic(domain.CategoryPartner)
	offsets := newestOffsets(t, client, topic)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	res, _, err := a.Commands.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: program, PartnerID: "p_kafka",
		Profile: domain.Profile{Name: "Kafka Partner", RelationshipType: "direct"}}, commands.Meta{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := a.Store.ReadStream(ctx, res.Stream, 0, eventstore.Forwards, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ReadStream(%s): %d events, %v", res.Stream, len(evs), err)
	}

	for {
		doc, err := a.Queries.GetPartner(ctx, program, "p_kafka")
		if err == nil {
			t.Logf("read model: %s", doc)
			break
		}
		if !errors.Is(err, domain.ErrNotFound) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the partner never reached the read model (relay at %d, event at %d)", a.Relay.Position(), res.Position)
		case <-time.After(20 * time.Millisecond):
		}
	}

	rec := findRecord(t, client, topic, offsets, res.Stream)
	h := map[string]string{}
	for _, hd := range rec.Headers {
		h[string(hd.Key)] = string(hd.Value)
	}
	if h[bus.MetaID] != evs[0].ID || h[bus.MetaSubject] != res.Stream || h[bus.MetaType] != evs[0].Type {
		t.Errorf("record headers %v; want ce_id %s, ce_subject %s, ce_type %s", h, evs[0].ID, res.Stream, evs[0].Type)
	}
	if h[bus.MetaProgram] != program || h[bus.MetaSource] != "partnerd/"+program || h[bus.MetaSpecVersion] != "1.0" {
		t.Errorf("record headers %v; want program %s", h, program)
	}
	if string(rec.Value) != string(evs[0].Data) {
		t.Errorf("record value %s, want the event data %s", rec.Value, evs[0].Data)
	}
}
