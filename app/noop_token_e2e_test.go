package app_test

import "testing"

// A command that writes nothing still answers a consistency token a query
// can wait on (it holds what the command saw), and its headers.
func TestCommandsThatWriteNothingAnswerAToken(t *testing.T) {
	h := start(t, config(t, ""))
	for _, id := range []string{"a", "b"} {
		if r := h.do("POST", "/partners", map[string]any{"partner_id": id, "name": id, "relationship_type": "direct"}); r.status != 201 {
			t.Fatal(r.status, string(r.body))
		}
	}
	h.mustCreate("/groups", map[string]any{"id": "vip", "name": "VIP"})
	check := func(what string, r response) {
		t.Helper()
		body := r.json(t)
		tok, _ := body["consistency_token"].(string)
		if r.status != 200 || tok == "" || r.header.Get("X-Consistency-Token") != tok || body["position"] == nil || r.header.Get("X-Position") == "" {
			t.Fatalf("%s: %d %s (headers %v)", what, r.status, r.body, r.header)
		}
		if g := h.do("GET", "/partners", nil, "X-Consistency-Token", tok); g.status != 200 {
			t.Fatalf("%s: a query with its token: %d %s", what, g.status, g.body)
		}
	}
	if r := h.do("POST", "/bulk/groups", map[string]any{"partner_ids": []string{"a", "b"}, "add": []string{"vip"}}); r.status != 200 {
		t.Fatal(r.status, string(r.body))
	}
	check("a bulk change that changes nothing", h.do("POST", "/bulk/groups", map[string]any{"partner_ids": []string{"a", "b"}, "add": []string{"vip"}}))
	check("a bulk change that fails for every partner", h.do("POST", "/bulk/groups", map[string]any{"partner_ids": []string{"ghost", "nobody"}, "add": []string{"vip"}}))
	check("an import whose rows all fail", h.do("POST", "/partners/import", "partner_id,name,relationship_type,country\r\nx1,X,direct,XX\r\n", "Content-Type", "text/csv"))
	check("an import of a header alone", h.do("POST", "/partners/import", "partner_id,name\r\n", "Content-Type", "text/csv"))
}
