package app_test

import (
	"strings"
	"testing"
)

// If-Match: a version, a quoted version, or * (any current version).
func TestIfMatchTakesAVersionOrAStar(t *testing.T) {
	h := start(t, config(t, ""))
	if r := h.do("POST", "/partners", map[string]any{"partner_id": "m1", "name": "M", "relationship_type": "direct",
		"custom_fields": map[string]any{"tier": "gold", "team": "a"}}); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	star := h.do("PATCH", "/partners/m1", map[string]any{"name": "M2"}, "If-Match", "*")
	if star.status != 200 || star.json(t)["version"] != 2.0 {
		t.Fatalf("If-Match *: %d %s", star.status, star.body)
	}
	// A read gives the entity tag (quoted, as answers do) to pass back.
	g := h.do("GET", "/partners/m1", nil, "X-Consistency-Token", star.header.Get("X-Consistency-Token"))
	if g.header.Get("ETag") != `"2"` {
		t.Fatalf("GET ETag %q, want \"2\"", g.header.Get("ETag"))
	}
	r := h.do("PATCH", "/partners/m1", map[string]any{"name": "M3"}, "If-Match", g.header.Get("ETag"))
	if r.status != 200 || r.header.Get("ETag") != `"3"` {
		t.Fatalf(`If-Match "2": %d %s (ETag %q)`, r.status, r.body, r.header.Get("ETag"))
	}
	// The conflict names the resource as the API does, not its stream.
	if r := h.do("PATCH", "/partners/m1", map[string]any{"name": "M4"}, "If-Match", "2"); r.status != 409 ||
		!strings.Contains(string(r.body), "partner m1 is at version 3") || strings.Contains(string(r.body), "partner-") {
		t.Fatalf("stale If-Match: %d %s", r.status, r.body)
	}
	if r := h.do("PATCH", "/partners/nobody", map[string]any{"name": "X"}, "If-Match", "*"); r.status != 404 {
		t.Fatalf("If-Match * on a partner that does not exist: %d %s", r.status, r.body)
	}
	// Anything but the version, bare or quoted, is refused (3W and "3 were
	// read as 3; a weak tag never matches under strong comparison).
	for _, im := range []string{"two", "3W", `"3`, `W/"3"`, `""`, "+3"} {
		if r := h.do("PATCH", "/partners/m1", map[string]any{"name": "X"}, "If-Match", im); r.status != 400 {
			t.Fatalf("If-Match %s: %d %s", im, r.status, r.body)
		}
	}
	// PATCH merges custom fields key by key (RFC 7396); null drops one.
	r = h.do("PATCH", "/partners/m1", map[string]any{"custom_fields": map[string]any{"tier": nil, "region": "north"}})
	cf, _ := r.json(t)["custom_fields"].(map[string]any)
	if r.status != 200 || len(cf) != 2 || cf["team"] != "a" || cf["region"] != "north" {
		t.Fatalf("custom fields after a merge patch: %d %s", r.status, r.body)
	}
}

// POST /partners/{id}/deactivate: the partner left the platform, so its
// contract becomes publisher_deactivated from any stage; a second call
// changes nothing; a new proposal starts over.
func TestDeactivateMovesTheContractFromAnyStage(t *testing.T) {
	h := start(t, config(t, ""))
	h.mustCreate("/template-terms", map[string]any{"id": "std", "name": "Standard"})
	for _, id := range []string{"joined", "bare"} {
		if r := h.do("POST", "/partners", map[string]any{"partner_id": id, "name": id, "relationship_type": "direct"}); r.status != 201 {
			t.Fatal(r.status, string(r.body))
		}
	}
	if r := h.do("POST", "/partners/joined/contract/propose", map[string]any{"template_term_id": "std"}); r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	if r := h.do("POST", "/partners/joined/contract/accept", map[string]any{"by": "publisher"}); r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	d := h.do("POST", "/partners/joined/deactivate", nil)
	if d.status != 200 || contractStage(t, d.json(t)) != "publisher_deactivated" || d.json(t)["deactivated_at"] == nil || d.json(t)["position"] == "" {
		t.Fatalf("deactivate: %d %s", d.status, d.body)
	}
	g := h.do("GET", "/partners/joined", nil, "X-Consistency-Token", d.header.Get("X-Consistency-Token"))
	if contractStage(t, g.json(t)) != "publisher_deactivated" {
		t.Fatalf("read model after deactivate: %s", g.body)
	}
	head := h.head()
	if r := h.do("POST", "/partners/joined/deactivate", nil); r.status != 200 || contractStage(t, r.json(t)) != "publisher_deactivated" {
		t.Fatalf("second deactivate: %d %s", r.status, r.body)
	}
	if h.head() != head {
		t.Fatal("a second deactivate appended events")
	}
	if r := h.do("POST", "/partners/joined/contract/propose", map[string]any{"template_term_id": "std"}); r.status != 200 || contractStage(t, r.json(t)) != "awaiting_publisher_approval" {
		t.Fatalf("a new proposal after leaving: %d %s", r.status, r.body)
	}
	// Without a contract, the departure is still recorded.
	if r := h.do("POST", "/partners/bare/deactivate", nil); r.status != 200 || r.json(t)["deactivated_at"] == nil || r.json(t)["contract"] != nil {
		t.Fatalf("deactivate without a contract: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/partners/nobody/deactivate", nil); r.status != 404 {
		t.Fatalf("deactivate an unknown partner: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/partners/bare/deactivate", map[string]any{"why": "x"}); r.status != 422 {
		t.Fatalf("deactivate with a body field it does not take: %d %s", r.status, r.body)
	}
}
