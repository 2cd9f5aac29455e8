package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/testenv"
)

const dbTwoInstances = 6

// Two partnerd processes on one KurrentDB and one Redis serve the same read
// models; one relay publishes at a time, and when its process stops the
// other takes over.
func TestTwoInstancesOnKurrentDB(t *testing.T) {
	esdbURL, _ := testenv.KurrentDB(t)
	cfg := config(t, redisDB(t, dbTwoInstances))
	cfg.EventStore = esdbURL
	h1 := start(t, cfg)
	h2 := start(t, cfg)
	for i := 0; i < 10; i++ {
		writer, reader := h1, h2
		if i%2 == 1 {
			writer, reader = h2, h1
		}
		id := fmt.Sprintf("p%02d", i)
		r := writer.do("POST", "/partners", map[string]any{"partner_id": id, "name": "P", "relationship_type": "direct"})
		if r.status != 201 {
			t.Fatalf("create on instance: %d %s", r.status, r.body)
		}
		g := reader.do("GET", "/partners/"+id, nil, "X-Consistency-Token", r.header.Get("X-Consistency-Token"))
		if g.status != 200 {
			t.Fatalf("read on the other instance: %d %s", g.status, g.body)
		}
	}
	publishing := 0
	for _, h := range []*harness{h1, h2} {
		if h.app.Relay.Published() > 0 {
			publishing++
		}
	}
	if publishing != 1 {
		t.Fatalf("%d relays published; want exactly one", publishing)
	}
	leader, standby := h1, h2
	if h2.app.Relay.Published() > 0 {
		leader, standby = h2, h1
	}
	leader.stop()
	r := standby.do("POST", "/partners", map[string]any{"partner_id": "after", "name": "P", "relationship_type": "direct"})
	if r.status != 201 {
		t.Fatal(r.status)
	}
	start := time.Now()
	g := standby.do("GET", "/partners/after", nil, "X-Consistency-Token", r.header.Get("X-Consistency-Token"))
	if g.status != 200 {
		t.Fatalf("after the leader stopped, the standby did not take over: %d %s", g.status, g.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := standby.app.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if total := standby.do("GET", "/partners", nil).json(t)["total"]; total != 11.0 {
		t.Fatalf("total = %v, want 11", total)
	}
	t.Logf("standby took over and projected within %s", time.Since(start))
}
