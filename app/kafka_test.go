package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
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

// dbKafkaStatus is the Redis database of TestKafkaProjectionStatusIsTheConsumersProgress.
const dbKafkaStatus = 47

// kafkaTestRedisURL returns the URL of database dbKafka on the test Redis, flushed.
func kafkaTestRedisURL(t *testing.T) string {
	t.Helper()
	return flushedRedisDB(t, dbKafka)
}

// flushedRedisDB returns the URL of database db on the test Redis, flushed.
func flushedRedisDB(t *testing.T, db int) string {
	t.Helper()
	u, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatalf("%s: %v", testenv.RedisURLEnv, err)
	}
	u.Path = "/" + strconv.Itoa(db)
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		t.Fatalf("%s: %v", testenv.RedisURLEnv, err)
	}
	opt.DisableIdentity = true
	c := redis.NewClient(opt)
	defer func() { _ = c.Close() }()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("FLUSHDB %d: %v", db, err)
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

// With Kafka, a projection's checkpoint in GET /v1/projections (and what
// readiness checks) is its consumer group's progress: while the partners
// projection is still working through a burst of creates, it is behind
// the log's head. It showed the relay's position (what the broker holds)
// and claimed lag 0 with thousands of partners missing from the list.
func TestKafkaProjectionStatusIsTheConsumersProgress(t *testing.T) {
	cfg := config(t, flushedRedisDB(t, dbKafkaStatus))
	cfg.KafkaBrokers = testenv.KafkaBrokers(t)
	cfg.KafkaNamespace = testenv.UniquePrefix(t) + "."
	h := start(t, cfg)
	// Many creates at once, straight to the commands: the log grows faster
	// than the consumers work through it.
	const n, writers = 6000, 32
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				_, _, err := h.app.Commands.CreatePartner.Handle(t.Context(), domain.NewPartner{ProgramID: "acme", PartnerID: fmt.Sprintf("k%05d", i),
					Profile: domain.Profile{Name: fmt.Sprintf("Kafka %d", i), RelationshipType: "direct"}}, commands.Meta{})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	head := h.head()
	behind := 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := h.do("GET", h.srv.URL+"/v1/projections", nil)
		var cp uint64
		for _, it := range st.json(t)["items"].([]any) {
			if m := it.(map[string]any); m["name"] == "partners" {
				cp, _ = strconv.ParseUint(m["checkpoint"].(string), 10, 64)
			}
		}
		total := h.do("GET", "/partners?limit=1", nil).json(t)["total"].(float64)
		if cp >= head && total != n {
			t.Fatalf("partners checkpoint %d ≥ the import's head %d, but the list holds %v of %d partners", cp, head, total, n)
		}
		if cp < head {
			behind++
		}
		if cp >= head && total == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not caught up: checkpoint %d, head %d, %v of %d partners listed", cp, head, total, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the status showed the partners projection behind the head %d times before it caught up", behind)
}
