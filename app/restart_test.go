package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
)

func newPartner(id string) domain.NewPartner {
	return domain.NewPartner{ProgramID: "acme", PartnerID: id, Profile: domain.Profile{Name: id, RelationshipType: "direct", Country: "DE"}}
}

// With real Redis the read models outlive the process: a restart resumes
// the relay from its checkpoint, applies only what is new, and events
// appended while partnerd was down are drained.
func TestRestartResumesFromCheckpoint(t *testing.T) {
	cfg := config(t, redisDB(t, dbRestart))
	ctx := context.Background()
	h := start(t, cfg)
	for i := 0; i < 20; i++ {
		if r := h.do("POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("p%02d", i), "name": "P", "relationship_type": "direct"}); r.status != 201 {
			t.Fatal(r.status)
		}
	}
	if err := h.app.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkpoint := h.app.Relay.Position()
	h.stop()

	// While partnerd is down, more events reach the log (e.g. from the CLI).
	store, err := app.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmds := commands.New(commands.Deps{Store: store})
	for i := 20; i < 25; i++ {
		if _, _, err := cmds.CreatePartner.Handle(ctx, newPartner(fmt.Sprintf("p%02d", i)), commands.Meta{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	_ = store.Close()

	h2 := start(t, cfg)
	for _, r := range h2.app.Runners {
		want := uint64(0) // only the 5 new partner events, by each projection that reads them
		if slices.Contains(r.Projection().Topics(), "partnerd.partners") {
			want = 5
		}
		if got := r.Applied(); got != want {
			t.Fatalf("after restart projection %s applied %d events, want %d (checkpoint was %d)", r.Projection().Name(), got, want, checkpoint)
		}
	}
	page := h2.do("GET", "/partners?limit=100", nil).json(t)
	if page["total"] != 25.0 {
		t.Fatalf("total after restart = %v, want 25", page["total"])
	}
	if h2.app.Relay.Position() <= checkpoint {
		t.Fatalf("relay position %d did not move past %d", h2.app.Relay.Position(), checkpoint)
	}
}

// With the embedded Redis the read models are disposable: every start
// rebuilds them from the log.
func TestEmbeddedRedisRebuildsFromTheLog(t *testing.T) {
	cfg := config(t, "")
	h := start(t, cfg)
	for i := 0; i < 10; i++ {
		h.do("POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("p%02d", i), "name": "P", "relationship_type": "direct"})
	}
	h.stop()
	h2 := start(t, cfg)
	if got := h2.do("GET", "/partners", nil).json(t)["total"]; got != 10.0 {
		t.Fatalf("total after restart = %v, want 10", got)
	}
	if r := h2.do("GET", "/partners/p03", nil); r.status != 200 {
		t.Fatalf("p03 after restart: %d", r.status)
	}
}

// A projection added to a deployment whose log was already published is
// built from the log at start, rather than meeting streams mid-history
// (where its version guards would rightly refuse to skip ahead).
func TestNewProjectionIsBuiltFromTheLog(t *testing.T) {
	cfg := config(t, redisDB(t, dbRestart))
	h := start(t, cfg)
	for i := 0; i < 5; i++ {
		h.do("POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("n%d", i), "name": "N", "relationship_type": "direct"})
		h.do("PATCH", fmt.Sprintf("/partners/n%d", i), map[string]any{"name": "N2"})
	}
	if err := h.app.WaitCaughtUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.stop()
	// The partner read model never existed in this Redis, as for a new one.
	rdb, _, err := app.OpenRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := rdb.Keys(t.Context(), "pd:partners:*").Result()
	if len(keys) == 0 {
		t.Fatal("no partner keys to drop")
	}
	rdb.Del(t.Context(), keys...)
	rdb.Close()
	h2 := start(t, cfg)
	if got := h2.do("GET", "/partners", nil).json(t)["total"]; got != 5.0 {
		t.Fatalf("total = %v after the new projection was built, want 5", got)
	}
	if got := h2.do("GET", "/partners/n3", nil).json(t)["name"]; got != "N2" {
		t.Fatalf("n3 name = %v, want N2", got)
	}
}

// A partners generation built by a release before the gram registry
// (layout 1: no layout recorded) keeps serving after an upgrade while
// partnerd rebuilds it in the new layout at start, and the rebuilt one
// answers 2-character searches through the registry.
func TestOlderLayoutIsRebuiltAtStart(t *testing.T) {
	cfg := config(t, redisDB(t, dbRestart))
	h := start(t, cfg)
	for i, name := range []string{"xaby", "zzzz", "qabq", "ab"} {
		if r := h.do("POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("l%d", i), "name": name, "relationship_type": "direct"}); r.status != 201 {
			t.Fatal(r.status)
		}
	}
	if err := h.app.WaitCaughtUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	old := h.app.Generation("partners")
	if l := h.app.Layout("partners"); l != projections.PartnersLayout {
		t.Fatalf("a generation partnerd started has layout %d, want %d", l, projections.PartnersLayout)
	}
	h.stop()
	// What the old release left: no layout recorded, no gram registry.
	rdb, _, err := app.OpenRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ks := projections.NewKeyspace("partners", old, "acme")
	if n, _ := rdb.Del(t.Context(), projections.LayoutKey("partners", old), ks.GramRegistryKey()).Result(); n != 2 {
		t.Fatalf("deleted %d of the layout key and the registry, want 2", n)
	}

	h2 := start(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for h2.app.Layout("partners") != projections.PartnersLayout || h2.app.Generation("partners") == old {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: partners generation %d layout %d, want a new generation of layout %d",
				h2.app.Generation("partners"), h2.app.Layout("partners"), projections.PartnersLayout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l, err := rdb.Get(t.Context(), projections.LayoutKey("partners", h2.app.Generation("partners"))).Int(); err != nil || l != projections.PartnersLayout {
		t.Fatalf("layout recorded for the new generation: %d %v", l, err)
	}
	page := h2.do("GET", "/partners?q=ab", nil).json(t)
	var ids []string
	for _, it := range page["items"].([]any) {
		ids = append(ids, it.(map[string]any)["partner_id"].(string))
	}
	if strings.Join(ids, " ") != "l0 l2 l3" {
		t.Fatalf("q=ab after the layout rebuild: %v, want l0 l2 l3", ids)
	}
}
