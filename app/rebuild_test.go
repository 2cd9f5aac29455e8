package app_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
)

// keysOf lists one projection generation's keys with their contents, the
// generation number removed, so two generations can be compared
// (testenv.DumpGeneration).
func keysOf(t *testing.T, rdb redis.UniversalClient, name string, gen int64) map[string]string {
	t.Helper()
	m, err := testenv.DumpGeneration(context.Background(), rdb, name, gen)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRebuildWithoutDowntime(t *testing.T) {
	// The live load runs as fast as the machine lets it: no rate limit, or
	// its reads answer 429 on a fast one.
	backendsWith(t, dbEndToEnd, func(c *app.Config) { c.RateLimit = 0 }, func(t *testing.T, h *harness) {
		ctx := context.Background()
		for i := 0; i < 200; i++ {
			h.do("POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("p%03d", i), "name": "P", "relationship_type": "direct", "country": []string{"DE", "FR"}[i%2]})
		}
		for i := 0; i < 200; i += 3 {
			h.do("PATCH", fmt.Sprintf("/partners/p%03d", i), map[string]any{"country": "IT"})
		}
		// Writes and reads go on during the rebuild.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var readErrors, writes atomic.Int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if r := h.do("POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("live%04d", i), "name": "L", "relationship_type": "direct"}); r.status == 201 {
					writes.Add(1)
				}
				if r := h.do("GET", "/partners/p001", nil); r.status != 200 {
					readErrors.Add(1)
				}
			}
		}()
		var progressCalls atomic.Int64
		res, err := projections.Rebuild(ctx, h.app.Redis, h.app.Store, projections.Partners{}, func(done, total eventstore.Position, applied uint64) {
			progressCalls.Add(1)
		})
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if res.NewGeneration <= res.OldGeneration || progressCalls.Load() == 0 || writes.Load() == 0 {
			t.Fatalf("rebuild = %+v, progress calls %d, live writes %d", res, progressCalls.Load(), writes.Load())
		}
		if readErrors.Load() != 0 {
			t.Fatalf("%d reads failed during the rebuild", readErrors.Load())
		}
		if err := h.app.WaitCaughtUp(ctx); err != nil {
			t.Fatal(err)
		}
		waitGeneration(t, h, res.NewGeneration)
		if old := keysOf(t, h.app.Redis, "partners", res.OldGeneration); len(old) != 0 {
			t.Fatalf("%d keys of the old generation remain", len(old))
		}
		rebuilt := keysOf(t, h.app.Redis, "partners", res.NewGeneration)
		// A second rebuild from scratch, with nothing moving, must produce
		// exactly the same keys: the first one missed nothing written meanwhile.
		res2, err := projections.Rebuild(ctx, h.app.Redis, h.app.Store, projections.Partners{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		again := keysOf(t, h.app.Redis, "partners", res2.NewGeneration)
		if fmt.Sprint(rebuilt) != fmt.Sprint(again) {
			t.Fatalf("the generation rebuilt under load differs from a quiet rebuild: %d vs %d keys", len(rebuilt), len(again))
		}
		total := h.do("GET", "/partners", nil).json(t)["total"].(float64)
		if int64(total) != 200+writes.Load() {
			t.Fatalf("total %v after rebuild, want %d", total, 200+writes.Load())
		}
		if got := h.do("GET", "/partners/p003", nil).json(t)["country"]; got != "IT" {
			t.Fatalf("p003 country %v after rebuild, want IT", got)
		}
	})
}

func waitGeneration(t *testing.T, h *harness, gen int64) {
	deadline := time.Now().Add(5 * time.Second)
	for h.app.Generation("partners") != gen {
		if time.Now().After(deadline) {
			t.Fatalf("live generation %d, want %d", h.app.Generation("partners"), gen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The admin endpoint rebuilds inside the server, which is the only way with
// the embedded Redis or a locked embedded store.
func TestRebuildEndpoint(t *testing.T) {
	h := start(t, config(t, ""))
	for i := 0; i < 20; i++ {
		h.do("POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("p%02d", i), "name": "P", "relationship_type": "direct"})
	}
	if r := h.do("POST", h.srv.URL+"/v1/projections/nosuch/rebuild", nil); r.status != 404 {
		t.Fatalf("unknown projection: %d", r.status)
	}
	if r := h.do("POST", h.srv.URL+"/v1/projections/partners/rebuild", nil, "Authorization", ""); r.status != 401 {
		t.Fatalf("no key: %d", r.status)
	}
	if r := h.do("POST", h.srv.URL+"/v1/projections/partners/rebuild", nil); r.status != 202 {
		t.Fatalf("rebuild: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		items := h.do("GET", h.srv.URL+"/v1/projections", nil).json(t)["items"].([]any)
		var partners map[string]any
		for _, it := range items {
			if m := it.(map[string]any); m["name"] == "partners" {
				partners = m
			}
		}
		if rb, ok := partners["rebuild"].(map[string]any); ok && rb["running"] == false {
			if rb["error"] != nil || partners["generation"] != 2.0 {
				t.Fatalf("rebuild ended with %v", partners)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rebuild did not finish: %v", partners)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := h.do("GET", "/partners", nil).json(t)["total"]; got != 20.0 {
		t.Fatalf("total after rebuild = %v", got)
	}
}
