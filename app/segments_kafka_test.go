package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
)

const dbSegmentsKafka = 18

// TestSegmentMembershipReachesKafka: a partner matching a new segment
// yields segment.partner_entered on the topic partnerd.segments, keyed by
// the segment's members stream, with the stable membership event ID.
func TestSegmentMembershipReachesKafka(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	cfg := app.Defaults()
	cfg.Data = t.TempDir()
	cfg.RedisURL = redisDB(t, dbSegmentsKafka)
	cfg.KafkaBrokers = brokers
	// Own topics and consumer groups: groups of the default names keep
	// their offsets on a broker that outlives runs, so anything else
	// published there (another run, a benchmark) would be consumed first.
	cfg.KafkaNamespace = testenv.UniquePrefix(t) + "."
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	program := "seg_" + hex.EncodeToString(rnd[:])
	cfg.BootstrapProgram = program
	cfg.BootstrapKey = "segments-kafka-key-0123456789"
	a, err := app.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	scfg := sarama.NewConfig()
	scfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	topic := cfg.KafkaNamespace + bus.Topic(domain.CategorySegment)
	offsets := newestOffsets(t, client, topic)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	m := commands.Meta{Actor: "test"}
	if _, _, err := a.Commands.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: program, PartnerID: "p1",
		Profile: domain.Profile{Name: "Kafka Partner", Country: "DE", RelationshipType: "direct"}}, m); err != nil {
		t.Fatal(err)
	}
	conds, err := domain.ParseConditions("conditions", []byte(`{"any":[{"all":[{"field":"country","op":"eq","values":["DE"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Commands.CreateSegment.Handle(ctx, domain.NewSegment{ProgramID: program, ID: "de", Name: "DE", Conditions: &conds}, m); err != nil {
		t.Fatal(err)
	}
	stream := domain.SegmentMembersStream(program, "de")
	rec := findRecord(t, client, topic, offsets, stream)
	h := map[string]string{}
	for _, hd := range rec.Headers {
		h[string(hd.Key)] = string(hd.Value)
	}
	if h[bus.MetaType] != domain.TypeSegmentPartnerEntered || h[bus.MetaID] != projections.MembershipEventID(program, "de", 1) || h[bus.MetaProgram] != program {
		t.Fatalf("record headers %v", h)
	}
	t.Logf("record: %s", rec.Value)
}
