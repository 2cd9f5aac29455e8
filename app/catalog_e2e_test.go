package app_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
)

// dbCatalog is the Redis database of the real-Redis runs of these tests.
const dbCatalog = 8

// problemFields lists the fields a problem document's errors name.
func problemFields(t *testing.T, r response) []string {
	t.Helper()
	var out []string
	if errs, ok := r.json(t)["errors"].([]any); ok {
		for _, e := range errs {
			out = append(out, e.(map[string]any)["field"].(string))
		}
	}
	return out
}

// stored folds a partner's stream: the truth the read models follow.
func (h *harness) stored(id string) domain.PartnerState {
	h.t.Helper()
	p, _, _, err := commands.Load[domain.Partner](context.Background(), h.app.Store, domain.PartnerStream("acme", id))
	if err != nil {
		h.t.Fatal(err)
	}
	return p.State()
}

func contractStage(t *testing.T, partner map[string]any) string {
	t.Helper()
	c, ok := partner["contract"].(map[string]any)
	if !ok {
		t.Fatalf("no contract in %v", partner)
	}
	return c["stage"].(string)
}

func (h *harness) mustCreate(path string, body any) map[string]any {
	h.t.Helper()
	r := h.do("POST", path, body)
	if r.status != 201 {
		h.t.Fatalf("POST %s: %d %s", path, r.status, r.body)
	}
	return r.json(h.t)
}

func TestContractsOverHTTP(t *testing.T) {
	backends(t, dbCatalog, func(t *testing.T, h *harness) {
		h.mustCreate("/partners", map[string]any{"partner_id": "blog", "name": "Blog", "relationship_type": "direct"})
		term := h.mustCreate("/template-terms", map[string]any{"id": "gold", "name": " Gold ", "description": "8 % on sales"})
		if term["id"] != "gold" || term["name"] != "Gold" || term["archived"] != false || term["version"] != 1.0 || term["position"] == "" {
			t.Fatalf("created term = %v", term)
		}
		g := h.do("GET", "/template-terms/gold", nil, "X-Consistency-Token", term["consistency_token"].(string))
		if g.status != 200 || g.json(t)["description"] != "8 % on sales" {
			t.Fatalf("GET term with its token: %d %s", g.status, g.body)
		}

		head := h.head()
		for _, tc := range []struct {
			name, action string
			body         any
			want         int
			fields       []string
		}{
			{name: "unknown action", action: "marry", body: map[string]any{}, want: 404},
			{name: "unknown term", action: "propose", body: map[string]any{"template_term_id": "nosuch"}, want: 422, fields: []string{"template_term_id"}},
			{name: "unknown field", action: "propose", body: map[string]any{"template_term_id": "gold", "colour": "red"}, want: 422, fields: []string{"colour"}},
			{name: "bad date and side", action: "propose", body: map[string]any{"template_term_id": "gold", "end_date": "soon", "by": "partner"}, want: 422, fields: []string{"end_date"}},
			{name: "field the action does not take", action: "accept", body: map[string]any{"reason": "why not"}, want: 422, fields: []string{"reason"}},
			// In range where written, not in UTC (years 10000 and 0): they were a 500.
			{name: "year 10000 in UTC", action: "propose", body: map[string]any{"template_term_id": "gold", "start_date": "9999-12-31T23:00:00-05:00"}, want: 422, fields: []string{"start_date"}},
			{name: "year 0 in UTC", action: "propose", body: map[string]any{"template_term_id": "gold", "respond_by": "0001-01-01T00:30:00+01:00"}, want: 422, fields: []string{"respond_by"}},
			{name: "malformed", action: "propose", body: `{"template_term_id":`, want: 400},
			{name: "accept without an offer", action: "accept", body: nil, want: 409},
		} {
			r := h.do("POST", "/partners/blog/contract/"+tc.action, tc.body)
			if r.status != tc.want || r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.want)
				continue
			}
			if got := problemFields(t, r); !subset(tc.fields, got) {
				t.Errorf("%s: errors name %v, want %v", tc.name, got, tc.fields)
			}
		}
		if h.head() != head {
			t.Fatal("refused contract moves appended events")
		}
		if r := h.do("POST", "/partners/nobody/contract/propose", map[string]any{"template_term_id": "gold"}); r.status != 404 {
			t.Fatalf("propose to a missing partner: %d", r.status)
		}

		respondBy := time.Now().UTC().Add(72 * time.Hour).Format(time.RFC3339)
		p := h.do("POST", "/partners/blog/contract/propose", map[string]any{"template_term_id": "gold", "respond_by": respondBy, "end_date": "2099-01-01"})
		if p.status != 200 || contractStage(t, p.json(t)) != "awaiting_publisher_approval" || p.json(t)["version"] != 2.0 {
			t.Fatalf("propose: %d %s", p.status, p.body)
		}
		c := p.json(t)["contract"].(map[string]any)
		if c["template_term_id"] != "gold" || c["end_date"] != "2099-01-01T00:00:00Z" || c["respond_by"] != respondBy {
			t.Fatalf("proposed contract = %v", c)
		}

		// An illegal move is a 409 naming the stage and the move, and appends nothing.
		head = h.head()
		r := h.do("POST", "/partners/blog/contract/propose", map[string]any{"template_term_id": "gold"})
		if r.status != 409 {
			t.Fatalf("second propose: %d %s", r.status, r.body)
		}
		if d := r.json(t)["detail"].(string); !strings.Contains(d, "awaiting_publisher_approval") || !strings.Contains(d, "propose") {
			t.Fatalf("conflict detail %q names neither stage nor move", d)
		}
		if r := h.do("POST", "/partners/blog/contract/accept", map[string]any{}); r.status != 409 {
			t.Fatalf("the brand accepting its own proposal: %d %s", r.status, r.body)
		}
		if h.head() != head {
			t.Fatal("an illegal move appended events")
		}

		a := h.do("POST", "/partners/blog/contract/accept", map[string]any{"by": "publisher"}, "If-Match", "2")
		if a.status != 200 || contractStage(t, a.json(t)) != "joined" || a.json(t)["contract_status"] != "active" {
			t.Fatalf("accept: %d %s", a.status, a.body)
		}
		// Switch to a new contract: the term is created on the way.
		s := h.do("POST", "/partners/blog/contract/switch", map[string]any{"new_template_term": map[string]any{"id": "gold-2027", "name": "Gold 2027"}})
		if s.status != 200 || contractStage(t, s.json(t)) != "joined" {
			t.Fatalf("switch to a new term: %d %s", s.status, s.body)
		}
		if c := s.json(t)["contract"].(map[string]any); c["template_term_id"] != "gold-2027" || c["id"] != "blog:2" {
			t.Fatalf("switched contract = %v", c)
		}
		if err := h.app.WaitCaughtUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		list := h.do("GET", "/template-terms?limit=1", nil).json(t)
		next, _ := list["next_cursor"].(string)
		if list["total"] != 2.0 || len(list["items"].([]any)) != 1 || list["items"].([]any)[0].(map[string]any)["id"] != "gold" || next == "" {
			t.Fatalf("term list = %v", list)
		}
		second := h.do("GET", "/template-terms?cursor="+next, nil).json(t)
		if second["items"].([]any)[0].(map[string]any)["id"] != "gold-2027" || second["next_cursor"] != nil {
			t.Fatalf("second page = %v", second)
		}
		// A cursor is one this server issued, for this list.
		for _, path := range []string{"/template-terms?cursor=gold", "/groups?cursor=zzz", "/segments?cursor=" + next,
			"/connections?cursor=" + next, "/credentials?cursor=%25%25"} {
			if r := h.do("GET", path, nil); r.status != 400 || r.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("GET %s: %d %s, want a 400 problem", path, r.status, r.body)
			}
		}
		// Modify: schedule an expiry, then revert it.
		m := h.do("POST", "/partners/blog/contract/modify", map[string]any{"end_date": "2098-06-30"})
		if m.status != 200 || m.json(t)["contract"].(map[string]any)["end_date"] != "2098-06-30T00:00:00Z" {
			t.Fatalf("modify: %d %s", m.status, m.body)
		}
		m = h.do("POST", "/partners/blog/contract/modify", map[string]any{"revert": "expiry"})
		if m.status != 200 || m.json(t)["contract"].(map[string]any)["end_date"] != nil {
			t.Fatalf("revert: %d %s", m.status, m.body)
		}
		if r := h.do("POST", "/partners/blog/contract/modify", map[string]any{"revert": []string{"later"}}); r.status != 422 {
			t.Fatalf("bad revert: %d %s", r.status, r.body)
		}
		hist := h.do("GET", "/partners/blog/history", nil).json(t)["items"].([]any)
		var types []string
		for _, e := range hist {
			types = append(types, e.(map[string]any)["type"].(string))
		}
		want := []string{"partner.created", "partner.contract_proposed", "partner.contract_accepted", "partner.contract_switched",
			"partner.contract_expiry_scheduled", "partner.contract_schedule_reverted"}
		if !reflect.DeepEqual(types, want) {
			t.Fatalf("history = %v, want %v", types, want)
		}
	})
}

func subset(want, got []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

func TestArchivingATermArchivesItsContracts(t *testing.T) {
	backends(t, dbCatalog, func(t *testing.T, h *harness) {
		h.mustCreate("/template-terms", map[string]any{"id": "gold", "name": "Gold"})
		h.mustCreate("/template-terms", map[string]any{"id": "silver", "name": "Silver"})
		move := func(partner, action string, body map[string]any) {
			t.Helper()
			if r := h.do("POST", "/partners/"+partner+"/contract/"+action, body); r.status != 200 {
				t.Fatalf("%s %s: %d %s", action, partner, r.status, r.body)
			}
		}
		for _, id := range []string{"joined", "open", "declined", "silver-one", "switching"} {
			h.mustCreate("/partners", map[string]any{"partner_id": id, "name": id, "relationship_type": "direct"})
		}
		move("joined", "propose", map[string]any{"template_term_id": "gold"})
		move("joined", "accept", map[string]any{"by": "publisher"})
		move("open", "propose", map[string]any{"template_term_id": "gold", "by": "publisher"})
		move("declined", "propose", map[string]any{"template_term_id": "gold"})
		move("declined", "decline", map[string]any{"by": "publisher", "reason": "rates"})
		move("silver-one", "propose", map[string]any{"template_term_id": "silver"})
		move("switching", "propose", map[string]any{"template_term_id": "silver"})
		move("switching", "accept", map[string]any{"by": "publisher"})
		move("switching", "switch", map[string]any{"template_term_id": "gold", "effective_at": time.Now().Add(240 * time.Hour).UTC().Format(time.RFC3339)})

		// No waiting for the read models: the sweep reads the catalog once it
		// has applied the log up to the archival.
		r := h.do("POST", "/template-terms/gold/archive", nil, "X-Request-ID", "archive-gold")
		if r.status != 200 || r.json(t)["archived"] != true || r.json(t)["archived_at"] == nil {
			t.Fatalf("archive: %d %s", r.status, r.body)
		}
		// The sweep ran before the answer: the partners' streams say so.
		want := map[string]domain.ContractStage{"joined": domain.StageArchived, "open": domain.StageArchived,
			"declined": domain.StagePublisherDeclined, "silver-one": domain.StageAwaitingPublisherApproval, "switching": domain.StageJoined}
		for id, stage := range want {
			if got := h.stored(id).Contract.Stage; got != stage {
				t.Errorf("%s: stage %s, want %s", id, got, stage)
			}
		}
		if sw := h.stored("switching").Contract.ScheduledSwitch; sw != nil {
			t.Errorf("the scheduled switch to the archived term survived: %+v", sw)
		}
		items := h.do("GET", "/partners/joined/history", nil).json(t)["items"].([]any)
		last := items[len(items)-1].(map[string]any)
		if last["type"] != "partner.contract_archived" || last["actor"] != commands.ActorTermArchival || last["correlation_id"] != "archive-gold" {
			t.Fatalf("last event of joined = %v", last)
		}
		g := h.do("GET", "/template-terms/gold", nil, "X-Consistency-Token", r.header.Get("X-Consistency-Token"))
		if g.status != 200 || g.json(t)["archived"] != true {
			t.Fatalf("GET archived term: %d %s", g.status, g.body)
		}
		// Archiving again is harmless; the archived term is used no more.
		head := h.head()
		if again := h.do("POST", "/template-terms/gold/archive", map[string]any{}); again.status != 200 {
			t.Fatalf("archive again: %d %s", again.status, again.body)
		}
		if h.head() != head {
			t.Fatal("archiving an archived term appended events")
		}
		if r := h.do("POST", "/partners/declined/contract/propose", map[string]any{"template_term_id": "gold"}); r.status != 422 ||
			!slices.Contains(problemFields(t, r), "template_term_id") {
			t.Fatalf("propose on an archived term: %d %s", r.status, r.body)
		}
		if r := h.do("PATCH", "/template-terms/gold", map[string]any{"name": "Gold again"}); r.status != 409 {
			t.Fatalf("renaming an archived term: %d %s", r.status, r.body)
		}
		if r := h.do("PATCH", "/template-terms/silver", map[string]any{"name": "Silver+", "description": "new"}); r.status != 200 ||
			r.json(t)["name"] != "Silver+" || r.json(t)["version"] != 2.0 {
			t.Fatalf("rename: %d %s", r.status, r.body)
		}
		for _, tc := range []struct {
			method, path string
			body         any
			want         int
		}{
			{method: "POST", path: "/template-terms/nosuch/archive", want: 404},
			{method: "POST", path: "/template-terms/silver/archive", body: map[string]any{"now": true}, want: 422},
			{method: "PATCH", path: "/template-terms/nosuch", body: map[string]any{"name": "X"}, want: 404},
			{method: "PATCH", path: "/template-terms/silver", body: map[string]any{}, want: 422},
			{method: "POST", path: "/template-terms", body: map[string]any{"id": "silver", "name": "Dup"}, want: 409},
			{method: "POST", path: "/template-terms", body: map[string]any{"name": ""}, want: 422},
			{method: "GET", path: "/template-terms/nosuch", want: 404},
		} {
			if r := h.do(tc.method, tc.path, tc.body); r.status != tc.want {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.want)
			}
		}
	})
}

func TestGroupsOverHTTP(t *testing.T) {
	backends(t, dbCatalog, func(t *testing.T, h *harness) {
		for _, id := range []string{"a", "b"} {
			h.mustCreate("/partners", map[string]any{"partner_id": id, "name": id, "relationship_type": "direct"})
		}
		vip := h.mustCreate("/groups", map[string]any{"id": "vip", "name": "VIP"})
		if vip["id"] != "vip" || vip["name"] != "VIP" || vip["version"] != 1.0 {
			t.Fatalf("created group = %v", vip)
		}
		h.mustCreate("/groups", map[string]any{"id": "coupons", "name": "Coupons"})
		assigned := h.mustCreate("/groups", map[string]any{"name": "Assigned ID"})
		if id, _ := assigned["id"].(string); !strings.HasPrefix(id, "g_") {
			t.Fatalf("assigned group id = %v", assigned["id"])
		}

		head := h.head()
		r := h.do("PUT", "/partners/a/groups", map[string]any{"groups": []string{"vip", "nosuch"}})
		if r.status != 422 || !reflect.DeepEqual(problemFields(t, r), []string{"groups[1]"}) {
			t.Fatalf("unknown group: %d %s", r.status, r.body)
		}
		for _, body := range []any{map[string]any{}, map[string]any{"groups": "vip"}, map[string]any{"groups": []string{"a b"}}} {
			if r := h.do("PUT", "/partners/a/groups", body); r.status != 422 {
				t.Errorf("PUT groups %v: %d %s", body, r.status, r.body)
			}
		}
		if r := h.do("PUT", "/partners/nobody/groups", map[string]any{"groups": []string{"vip"}}); r.status != 404 {
			t.Errorf("groups of a missing partner: %d", r.status)
		}
		if h.head() != head {
			t.Fatal("refused group changes appended events")
		}
		for _, id := range []string{"a", "b"} {
			if r := h.do("PUT", "/partners/"+id+"/groups", map[string]any{"groups": []string{"vip", "coupons", "vip"}}); r.status != 200 || r.json(t)["version"] != 2.0 {
				t.Fatalf("PUT groups of %s: %d %s", id, r.status, r.body)
			}
			if g := h.stored(id).Groups; !reflect.DeepEqual(g, []string{"coupons", "vip"}) {
				t.Fatalf("groups of %s = %v", id, g)
			}
		}
		if r := h.do("PUT", "/partners/a/groups", map[string]any{"groups": []string{"coupons", "vip"}}); r.status != 200 || r.json(t)["version"] != 2.0 {
			t.Fatalf("the same set again: %d %s", r.status, r.body)
		}

		ren := h.do("PATCH", "/groups/vip", map[string]any{"name": "VIPs"})
		if ren.status != 200 || ren.json(t)["name"] != "VIPs" {
			t.Fatalf("rename: %d %s", ren.status, ren.body)
		}
		if g := h.do("GET", "/groups/vip", nil, "X-Consistency-Token", ren.header.Get("X-Consistency-Token")); g.json(t)["name"] != "VIPs" {
			t.Fatalf("GET renamed group: %s", g.body)
		}
		if err := h.app.WaitCaughtUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		if l := h.do("GET", "/groups", nil).json(t); l["total"] != 3.0 {
			t.Fatalf("group list = %v", l)
		}

		d := h.do("DELETE", "/groups/vip", nil, "X-Request-ID", "delete-vip")
		if d.status != 204 || len(d.body) != 0 || d.header.Get("X-Consistency-Token") == "" {
			t.Fatalf("delete: %d %q", d.status, d.body)
		}
		for _, id := range []string{"a", "b"} {
			if g := h.stored(id).Groups; !reflect.DeepEqual(g, []string{"coupons"}) {
				t.Errorf("groups of %s after deleting vip = %v", id, g)
			}
		}
		items := h.do("GET", "/partners/b/history", nil).json(t)["items"].([]any)
		last := items[len(items)-1].(map[string]any)
		data := last["data"].(map[string]any)
		if last["type"] != "partner.groups_changed" || last["actor"] != commands.ActorGroupDeletion ||
			!reflect.DeepEqual(data["removed"], []any{"vip"}) || !reflect.DeepEqual(data["groups"], []any{"coupons"}) {
			t.Fatalf("last event of b = %v", last)
		}
		if g := h.do("GET", "/groups/vip", nil, "X-Consistency-Token", d.header.Get("X-Consistency-Token")); g.status != 404 {
			t.Fatalf("GET deleted group: %d %s", g.status, g.body)
		}
		head = h.head()
		if again := h.do("DELETE", "/groups/vip", nil); again.status != 204 || h.head() != head {
			t.Fatalf("delete again: %d, appended %v", again.status, h.head() != head)
		}
		for _, tc := range []struct {
			method, path string
			body         any
			want         int
		}{
			{method: "PUT", path: "/partners/a/groups", body: map[string]any{"groups": []string{"vip"}}, want: 422},
			{method: "PATCH", path: "/groups/vip", body: map[string]any{"name": "Back"}, want: 404},
			{method: "POST", path: "/groups", body: map[string]any{"id": "vip", "name": "Again"}, want: 409},
			{method: "DELETE", path: "/groups/nosuch", want: 404},
			{method: "PATCH", path: "/groups/coupons", body: map[string]any{}, want: 422},
			{method: "PATCH", path: "/groups/coupons", body: map[string]any{"name": " "}, want: 422},
		} {
			if r := h.do(tc.method, tc.path, tc.body); r.status != tc.want {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, r.status, r.body, tc.want)
			}
		}
		if l := h.do("GET", "/groups", nil, "X-Consistency-Token", d.header.Get("X-Consistency-Token")).json(t); l["total"] != 2.0 {
			t.Fatalf("group list after the deletion = %v", l)
		}
	})
}

// A contract move answered just before the archival of its term, and
// whose own re-check therefore found the term live, is in the index the
// archival's sweep reads (the catalog has applied the log up to the
// archival by then): no contract stays open on an archived term.
func TestArchivalRightAfterAMoveOntoTheTerm(t *testing.T) {
	backends(t, dbCatalog, func(t *testing.T, h *harness) {
		h.mustCreate("/template-terms", map[string]any{"id": "base", "name": "Base"})
		const rounds = 25
		for i := range rounds {
			term, partner := fmt.Sprintf("t%d", i), fmt.Sprintf("p%d", i)
			h.mustCreate("/template-terms", map[string]any{"id": term, "name": term})
			h.mustCreate("/partners", map[string]any{"partner_id": partner, "name": partner, "relationship_type": "direct"})
			for _, step := range []struct {
				action string
				body   map[string]any
			}{{"propose", map[string]any{"template_term_id": "base"}}, {"counter", map[string]any{"by": "publisher", "template_term_id": term}}} {
				if r := h.do("POST", "/partners/"+partner+"/contract/"+step.action, step.body); r.status != 200 {
					t.Fatalf("%s %s: %d %s", step.action, partner, r.status, r.body)
				}
			}
			if r := h.do("POST", "/template-terms/"+term+"/archive", nil); r.status != 200 {
				t.Fatalf("archive %s: %d %s", term, r.status, r.body)
			}
			if got := h.stored(partner).Contract.Stage; got != domain.StageArchived {
				t.Fatalf("round %d: %s is %s on the archived term %s", i, partner, got, term)
			}
		}
	})
}

// Deleting a group answers the position and a consistency token of the
// whole process: a list read with the token no longer finds the group on
// any partner, and the position is past every partner's change.
func TestGroupDeletionAnswerCoversItsPartners(t *testing.T) {
	backends(t, dbCatalog, func(t *testing.T, h *harness) {
		h.mustCreate("/groups", map[string]any{"id": "big", "name": "Big"})
		var ids []string
		for i := range 60 {
			id := fmt.Sprintf("m%02d", i)
			ids = append(ids, id)
			h.mustCreate("/partners", map[string]any{"partner_id": id, "name": id, "relationship_type": "direct"})
		}
		if r := h.do("POST", "/bulk/groups", map[string]any{"partner_ids": ids, "add": []string{"big"}}); r.status != 200 {
			t.Fatalf("bulk add: %d %s", r.status, r.body)
		}
		if err := h.app.WaitCaughtUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		r := h.do("DELETE", "/groups/big", nil)
		if r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		pos, err := strconv.ParseUint(r.header.Get("X-Position"), 10, 64)
		if err != nil || pos != h.head() {
			t.Fatalf("X-Position %q, the log's head %d", r.header.Get("X-Position"), h.head())
		}
		l := h.do("GET", "/partners?group=big", nil, "X-Consistency-Token", r.header.Get("X-Consistency-Token"))
		if l.status != 200 || l.json(t)["total"] != float64(0) {
			t.Fatalf("partners still in the deleted group (read with its token): %d %s", l.status, l.body)
		}
		p := h.do("GET", "/partners/m59", nil, "X-Consistency-Token", r.header.Get("X-Consistency-Token"))
		if p.status != 200 || len(p.json(t)["groups"].([]any)) != 0 {
			t.Fatalf("m59 read with the token: %d %s", p.status, p.body)
		}
	})
}
