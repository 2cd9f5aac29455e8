package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
)

const dbKafkaTwo = 7

// Two partnerd processes on one Kafka (one consumer group per projection,
// its partitions split between them), one KurrentDB and one Redis build
// exactly the read model that one process replaying the log builds: no
// effect lost, none doubled.
func TestTwoInstancesOnKafkaMatchARebuild(t *testing.T) {
	brokers := testenv.KafkaBrokers(t)
	esdbURL, _ := testenv.KurrentDB(t)
	cfg := config(t, redisDB(t, dbKafkaTwo))
	cfg.EventStore = esdbURL
	cfg.KafkaBrokers = brokers
	cfg.KafkaNamespace = testenv.UniquePrefix(t) + "." // the broker outlives test runs
	h1, h2 := start(t, cfg), start(t, cfg)
	tokens := map[string]string{}
	for i := 0; i < 40; i++ {
		h := []*harness{h1, h2}[i%2]
		id := fmt.Sprintf("k%02d", i%20)
		var r response
		if i < 20 {
			r = h.do("POST", "/partners", map[string]any{"partner_id": id, "name": "K", "relationship_type": "direct", "country": "DE"})
		} else {
			r = h.do("PATCH", "/partners/"+id, map[string]any{"country": []string{"FR", "IT"}[i%2], "name": strings.Repeat("K", i)})
		}
		if r.status != 201 && r.status != 200 {
			t.Fatalf("write %d: %d %s", i, r.status, r.body)
		}
		tokens[id] = r.header.Get("X-Consistency-Token")
	}
	// Each partner's last write becomes visible from both instances (the
	// second instance joining the consumer group makes Kafka rebalance, which
	// can hold a partition back for a few seconds: 503 then means retry).
	began := time.Now()
	for id, tok := range tokens {
		for _, h := range []*harness{h1, h2} {
			for {
				g := h.do("GET", "/partners/"+id, nil, "X-Consistency-Token", tok)
				if g.status == 200 && g.json(t)["version"] == 2.0 {
					break
				}
				if g.status != 503 || time.Since(began) > 60*time.Second {
					t.Fatalf("partner %s: %d %s", id, g.status, g.body)
				}
			}
		}
	}
	t.Logf("all writes visible on both instances after %s", time.Since(began))
	live := keysOf(t, h1.app.Redis, "partners", h1.app.Generation("partners"))
	res, err := projections.Rebuild(t.Context(), h1.app.Redis, h1.app.Store, projections.Partners{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := keysOf(t, h1.app.Redis, "partners", res.NewGeneration)
	if fmt.Sprint(live) != fmt.Sprint(rebuilt) {
		t.Fatalf("the read model built by two processes over Kafka differs from a rebuild:\nlive    %v\nrebuilt %v", live, rebuilt)
	}
	var applied uint64
	for _, h := range []*harness{h1, h2} {
		for _, r := range h.app.Runners {
			if r.Projection().Name() == "partners" {
				applied += r.Applied()
			}
		}
	}
	if applied != 40 {
		t.Fatalf("the two processes applied %d partner events in all, want each of the 40 exactly once", applied)
	}
}
