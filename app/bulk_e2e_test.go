package app_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

func bulkResults(t *testing.T, r response) map[string]map[string]any {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("bulk: %d %s", r.status, r.body)
	}
	out := map[string]map[string]any{}
	for _, it := range r.json(t)["results"].([]any) {
		m := it.(map[string]any)
		out[m["partner_id"].(string)] = m
	}
	return out
}

func TestBulkActions(t *testing.T) {
	h := start(t, config(t, ""))
	for _, id := range []string{"a", "b", "c"} {
		if r := h.do("POST", "/partners", map[string]any{"partner_id": id, "name": id, "relationship_type": "direct", "email": id + "@x.example"}); r.status != 201 {
			t.Fatal(r.status)
		}
	}
	if r := h.do("POST", "/groups", map[string]any{"id": "vip", "name": "VIP"}); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	// Groups: one missing partner fails alone; a repeat is unchanged.
	res := bulkResults(t, h.do("POST", "/bulk/groups", map[string]any{"partner_ids": []string{"a", "b", "ghost", "a"}, "add": []string{"vip"}}))
	if len(res) != 3 || res["a"]["status"] != "ok" || res["b"]["status"] != "ok" || res["ghost"]["status"] != "error" || res["ghost"]["code"] != 404.0 {
		t.Fatalf("bulk groups = %v", res)
	}
	res = bulkResults(t, h.do("POST", "/bulk/groups", map[string]any{"partner_ids": []string{"a", "c"}, "add": []string{"vip"}}))
	if res["a"]["status"] != "unchanged" || res["c"]["status"] != "ok" {
		t.Fatalf("second bulk groups = %v", res)
	}
	// A group that does not exist fails the request as a whole.
	if r := h.do("POST", "/bulk/groups", map[string]any{"partner_ids": []string{"a"}, "add": []string{"vip", "nosuch"}}); r.status != 422 ||
		r.json(t)["errors"].([]any)[0].(map[string]any)["field"] != "add[1]" {
		t.Fatalf("unknown group: %d %s", r.status, r.body)
	}
	// Contract: propose to all, then accept in bulk as the publisher; an
	// illegal move fails for that partner only and appends nothing there.
	if r := h.do("POST", "/template-terms", map[string]any{"id": "std", "name": "Standard"}); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	res = bulkResults(t, h.do("POST", "/bulk/contract", map[string]any{"partner_ids": []string{"a", "b"}, "action": "propose", "template_term_id": "std"}))
	if res["a"]["status"] != "ok" || res["b"]["status"] != "ok" {
		t.Fatalf("bulk propose = %v", res)
	}
	res = bulkResults(t, h.do("POST", "/bulk/contract", map[string]any{"partner_ids": []string{"a", "c"}, "action": "suspend"}))
	if res["a"]["code"] != 409.0 || res["c"]["code"] != 409.0 {
		t.Fatalf("suspend without a joined contract = %v", res)
	}
	// Email with an Idempotency-Key: a retry is answered from the first run
	// and sends nothing twice.
	body := map[string]any{"partner_ids": []string{"a", "b", "c"}, "subject": "Hello", "body": "News"}
	first := h.do("POST", "/bulk/email", body, "Idempotency-Key", "mail-1")
	headBefore := h.head()
	again := h.do("POST", "/bulk/email", body, "Idempotency-Key", "mail-1")
	if string(first.body) != string(again.body) || h.head() != headBefore {
		t.Fatalf("retried bulk email applied again: %s / %s", first.body, again.body)
	}
	for _, id := range []string{"a", "b", "c"} {
		if bulkResults(t, first)[id]["status"] != "ok" {
			t.Fatalf("email to %s: %s", id, first.body)
		}
	}
	// Bad requests change nothing.
	before := h.head()
	for _, tc := range []struct {
		path string
		body any
		want int
	}{
		{path: "/bulk/teleport", body: map[string]any{"partner_ids": []string{"a"}}, want: 404},
		{path: "/bulk/groups", body: map[string]any{"partner_ids": []string{"a"}}, want: 422},
		{path: "/bulk/groups", body: map[string]any{"add": []string{"vip"}}, want: 422},
		{path: "/bulk/groups", body: map[string]any{"partner_ids": []string{"a"}, "filter": map[string]any{}, "add": []string{"vip"}}, want: 422},
		// An empty selection beside a default {} filter is no "every partner".
		{path: "/bulk/groups", body: map[string]any{"partner_ids": []string{}, "filter": map[string]any{}, "add": []string{"vip"}}, want: 422},
		{path: "/bulk/contract", body: map[string]any{"partner_ids": []string{"a"}, "action": "teleport"}, want: 422},
		// Mistakes of the request, not of a partner: one 422, not one per partner.
		{path: "/bulk/contract", body: map[string]any{"partner_ids": []string{"a", "b"}, "action": "propose", "template_term_id": "nope"}, want: 422},
		{path: "/bulk/contract", body: map[string]any{"partner_ids": []string{"a", "b"}, "action": "expire", "effective_at": "2020-01-01T00:00:00Z"}, want: 422},
		{path: "/bulk/groups", body: map[string]any{"partner_ids": []string{"a"}, "add": []string{"vip"}, "remove": []string{"vip"}}, want: 422},
		{path: "/bulk/assigned-to", body: map[string]any{"partner_ids": []string{"a"}}, want: 422},
		{path: "/bulk/email", body: map[string]any{"partner_ids": []string{"a"}, "colour": "red"}, want: 422},
		{path: "/bulk/email", body: map[string]any{"partner_ids": []string{"a", "b"}, "subject": "s"}, want: 422},
		{path: "/bulk/email", body: map[string]any{"partner_ids": []string{"a"}, "body": "b"}, want: 422},
	} {
		if r := h.do("POST", tc.path, tc.body); r.status != tc.want {
			t.Errorf("%s %v: %d, want %d: %s", tc.path, tc.body, r.status, tc.want, r.body)
		}
	}
	if h.head() != before {
		t.Fatal("a rejected bulk request appended events")
	}
}

// 10k partners in one bulk request work, and each is changed once.
func TestBulkTenThousand(t *testing.T) {
	h := start(t, config(t, ""))
	const n = 10000
	ids := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, _, err := h.app.Commands.CreatePartner.Handle(t.Context(), domain.NewPartner{ProgramID: "acme", PartnerID: ids[i],
					Profile: domain.Profile{Name: "P", RelationshipType: "direct"}}, commands.Meta{Actor: "test"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("p%05d", i)
		work <- i
	}
	close(work)
	wg.Wait()
	began := time.Now()
	r := h.do("POST", "/bulk/assigned-to", map[string]any{"partner_ids": ids, "user": "jane@brand.example"})
	took := time.Since(began)
	res := bulkResults(t, r)
	ok := 0
	for _, v := range res {
		if v["status"] == "ok" {
			ok++
		}
	}
	if ok != n {
		t.Fatalf("%d of %d partners assigned", ok, n)
	}
	t.Logf("bulk assigned-to over %d partners took %s", n, took)
	if r := h.do("POST", "/bulk/assigned-to", map[string]any{"partner_ids": append(ids, "one-too-many"), "user": "x"}); r.status != 422 {
		t.Fatalf("10001 partners: %d", r.status)
	}
}

// A bulk action may target "every partner matching this filter", evaluated
// by the list query.
func TestBulkByFilter(t *testing.T) {
	h := start(t, config(t, ""))
	for i, c := range []string{"DE", "DE", "FR"} {
		h.do("POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("f%d", i), "name": "F", "relationship_type": "direct", "country": c})
	}
	if err := h.app.WaitCaughtUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	res := bulkResults(t, h.do("POST", "/bulk/assigned-to", map[string]any{"filter": map[string]any{"country": "DE"}, "user": "ann"}))
	if len(res) != 2 || res["f0"]["status"] != "ok" || res["f1"]["status"] != "ok" {
		t.Fatalf("bulk by filter = %v", res)
	}
	if r := h.do("POST", "/bulk/assigned-to", map[string]any{"filter": map[string]any{"size": "huge"}, "user": "ann"}); r.status != 422 ||
		!strings.Contains(string(r.body), `"field":"filter.size"`) {
		t.Fatalf("bad filter value: %d %s, want a 422 on filter.size", r.status, r.body)
	}
	if r := h.do("POST", "/bulk/assigned-to", map[string]any{"filter": map[string]any{"colour": "red"}, "user": "ann"}); r.status != 400 {
		t.Fatalf("unknown filter: %d %s", r.status, r.body)
	}
}
