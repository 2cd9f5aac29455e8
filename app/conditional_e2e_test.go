package app_test

import "testing"

// If-Match: a version, a quoted version, or * (any current version).
func TestIfMatchTakesAVersionOrAStar(t *testing.T) {
	h := start(t, config(t, ""))
	if r := h.do("POST", "/partners", map[string]any{"partner_id": "m1", "name": "M", "relationship_type": "direct",
		"custom_fields": map[string]any{"tier": "gold", "team": "a"}}); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	if r := h.do("PATCH", "/partners/m1", map[string]any{"name": "M2"}, "If-Match", "*"); r.status != 200 || r.json(t)["version"] != 2.0 {
		t.Fatalf("If-Match *: %d %s", r.status, r.body)
	}
	if r := h.do("PATCH", "/partners/m1", map[string]any{"name": "M3"}, "If-Match", `"2"`); r.status != 200 {
		t.Fatalf(`If-Match "2": %d %s`, r.status, r.body)
	}
	if r := h.do("PATCH", "/partners/m1", map[string]any{"name": "M4"}, "If-Match", "2"); r.status != 409 {
		t.Fatalf("stale If-Match: %d %s", r.status, r.body)
	}
	if r := h.do("PATCH", "/partners/nobody", map[string]any{"name": "X"}, "If-Match", "*"); r.status != 404 {
		t.Fatalf("If-Match * on a partner that does not exist: %d %s", r.status, r.body)
	}
	if r := h.do("PATCH", "/partners/m1", map[string]any{"name": "X"}, "If-Match", "two"); r.status != 400 {
		t.Fatalf("If-Match two: %d %s", r.status, r.body)
	}
	// PATCH merges custom fields key by key (RFC 7396); null drops one.
	r := h.do("PATCH", "/partners/m1", map[string]any{"custom_fields": map[string]any{"tier": nil, "region": "north"}})
	cf, _ := r.json(t)["custom_fields"].(map[string]any)
	if r.status != 200 || len(cf) != 2 || cf["team"] != "a" || cf["region"] != "north" {
		t.Fatalf("custom fields after a merge patch: %d %s", r.status, r.body)
	}
}
