package app_test

import "testing"

// A query string that does not parse is 400 on every route: Go's parser
// drops a pair with a broken %-escape, and a dropped filter would widen
// the result (q=% listed every partner).
func TestMalformedQueryStringIs400(t *testing.T) {
	h := start(t, config(t, ""))
	for _, id := range []string{"a1", "b1"} {
		if r := h.do("POST", "/partners", map[string]any{"partner_id": id, "name": "N " + id, "relationship_type": "direct", "country": "DE"}); r.status != 201 {
			t.Fatal(r.status, string(r.body))
		}
	}
	for _, path := range []string{
		"/partners?q=%",
		"/partners?q=%&country=US",
		"/partners?country=DE;country=FR",
		"/partners.csv?q=%zz",
		"/activities?flavor=%",
		"/partners/a1/history?type=%",
	} {
		r := h.do("GET", path, nil)
		if r.status != 400 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("GET %s: %d %s, want 400 problem+json", path, r.status, r.body)
		}
	}
	if r := h.do("POST", "/partners?x=%", map[string]any{"partner_id": "c1", "name": "C", "relationship_type": "direct"}); r.status != 400 {
		t.Fatalf("POST with a broken query string: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/partners/c1", nil); r.status != 404 {
		t.Fatalf("the refused POST created its partner: %d", r.status)
	}
	// An escaped % is a literal one.
	if r := h.do("GET", "/partners?q=%25", nil); r.status != 200 {
		t.Fatalf("q=%%25: %d %s", r.status, r.body)
	}
}
