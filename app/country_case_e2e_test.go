package app_test

import "testing"

// A country code matches whatever its case: the partner keeps "DE" for a
// "de" sent, and a segment condition or a list filter of "de" finds it.
func TestCountryCodesMatchInAnyCase(t *testing.T) {
	h := start(t, config(t, ""))
	r := h.do("POST", "/partners", map[string]any{"partner_id": "de1", "name": "D", "relationship_type": "direct", "country": "de"})
	if r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	tok := r.header.Get("X-Consistency-Token")
	conds := map[string]any{"any": []any{map[string]any{"all": []any{map[string]any{"field": "country", "op": "any_of", "values": []string{"de"}}}}}}
	seg := h.do("POST", "/segments", map[string]any{"name": "Germany", "conditions": conds})
	if seg.status != 201 {
		t.Fatal(seg.status, string(seg.body))
	}
	id := seg.json(t)["id"].(string)
	m := h.do("GET", "/segments/"+id+"/members", nil, "X-Consistency-Token", seg.header.Get("X-Consistency-Token"))
	if m.status != 200 || m.json(t)["total"] != 1.0 {
		t.Fatalf("members of country any_of [de]: %d %s", m.status, m.body)
	}
	if p := h.do("POST", "/segments/preview", map[string]any{"conditions": conds}, "X-Consistency-Token", tok); p.json(t)["total"] != 1.0 {
		t.Fatalf("preview of country any_of [de]: %s", p.body)
	}
	if l := h.do("GET", "/partners?country=de", nil, "X-Consistency-Token", tok); l.json(t)["total"] != 1.0 {
		t.Fatalf("list ?country=de: %s", l.body)
	}
}
