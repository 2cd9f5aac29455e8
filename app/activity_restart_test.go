package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/projections"
)

// A re-sent activity stays harmless across a restart (the embedded store's
// ID index is durable), and the feed is rebuilt from the log unchanged.
func TestActivityDedupeSurvivesRestartAndRebuild(t *testing.T) {
	for name, url := range map[string]func(*testing.T) string{"embedded redis": func(*testing.T) string { return "" }, "real redis": func(t *testing.T) string { return redisDB(t, dbActivityRestart) }} {
		t.Run(name, func(t *testing.T) {
			cfg := config(t, url(t))
			cfg.ActivityMaxAge = 0 // fixed dates: keep them whatever day the test runs
			batch := map[string]any{"activities": []any{
				map[string]any{"activity_id": "r1", "partner_id": "p1", "flavor": "logged_in", "occurred_at": "2026-11-01T10:00:00Z"},
				map[string]any{"activity_id": "r2", "partner_id": "p1", "flavor": "link_clicked", "occurred_at": "2026-11-01T11:00:00Z"},
			}}
			h := start(t, cfg)
			h.mustPartner("p1")
			if r := h.do("POST", "/activities", batch); r.status != 202 || r.json(t)["accepted"] != 2.0 {
				t.Fatalf("first send: %d %s", r.status, r.body)
			}
			if err := h.app.WaitCaughtUp(context.Background()); err != nil {
				t.Fatal(err)
			}
			head := h.head()
			h.stop()

			h = start(t, cfg)
			r := h.do("POST", "/activities", batch)
			if r.status != 202 || r.json(t)["duplicates"] != 2.0 || h.head() != head {
				t.Fatalf("re-send after restart: %d %s; head %d → %d", r.status, r.body, head, h.head())
			}
			if err := h.app.WaitCaughtUp(context.Background()); err != nil {
				t.Fatal(err)
			}
			if ids, _ := h.feed("", ""); strings.Join(ids, ",") != "r2,r1" {
				t.Fatalf("feed after restart: %v", ids)
			}
			if _, err := projections.Rebuild(context.Background(), h.app.Redis, h.app.Store, projections.Activities{}, nil); err != nil {
				t.Fatal(err)
			}
			for _, r := range h.app.Runners {
				if err := r.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if ids, page := h.feed("?partner_id=p1", ""); strings.Join(ids, ",") != "r2,r1" || page["total"] != 2.0 {
				t.Fatalf("feed after rebuild: %v %v", ids, page)
			}
		})
	}
}
