package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/queries"
)

// dbPartnerActions is the Redis database of the real-Redis runs of these tests.
const dbPartnerActions = 10

// expect sends a request that must answer want, and returns its answer.
func (h *harness) expect(want int, method, path string, body any, headers ...string) response {
	h.t.Helper()
	r := h.do(method, path, body, headers...)
	if r.status != want {
		h.t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

// read GETs a partner with the consistency token of a write, so the read
// model reflects that write.
func (h *harness) read(id string, after response) map[string]any {
	h.t.Helper()
	return h.readAt(id, after.header.Get("X-Consistency-Token"))
}

func (h *harness) readAt(id, token string) map[string]any {
	h.t.Helper()
	return h.expect(200, "GET", "/partners/"+id, nil, "X-Consistency-Token", token).json(h.t)
}

// tokenOf is a consistency token for the current version of a partner's
// stream, e.g. after another partner's request wrote to it.
func (h *harness) tokenOf(id string) string {
	h.t.Helper()
	stream := domain.PartnerStream("acme", id)
	_, v, _, err := commands.Load[domain.Partner](context.Background(), h.app.Store, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	return queries.ConsistencyToken(stream, uint64(v+1))
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// problem checks a problem answer's status and the fields its errors name.
func (h *harness) problem(r response, status int, fields ...string) {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if got := problemFields(h.t, r); len(fields) > 0 && strings.Join(got, ",") != strings.Join(fields, ",") {
		h.t.Fatalf("invalid fields %v, want %v: %s", got, fields, r.body)
	}
}

func TestAssignAndProspectStageOverHTTP(t *testing.T) {
	backends(t, dbPartnerActions, func(t *testing.T, h *harness) {
		h.mustCreate("/partners", map[string]any{"partner_id": "blog", "name": "Blog", "relationship_type": "direct"})

		r := h.expect(200, "PUT", "/partners/blog/assigned-to", map[string]any{"user": "ann@brand.example"})
		if r.json(t)["assigned_to"] != "ann@brand.example" || r.json(t)["version"] != 2.0 {
			t.Fatalf("assign answer = %s", r.body)
		}
		if got := h.read("blog", r)["assigned_to"]; got != "ann@brand.example" {
			t.Fatalf("read model assigned_to = %v", got)
		}
		head := h.head()
		if r := h.expect(200, "PUT", "/partners/blog/assigned-to", map[string]any{"user": "ann@brand.example"}); r.json(t)["version"] != 2.0 || h.head() != head {
			t.Fatalf("assigning the same user appended: %s", r.body)
		}
		r = h.expect(200, "PUT", "/partners/blog/assigned-to", map[string]any{"user": nil})
		if v, ok := h.read("blog", r)["assigned_to"]; !ok || v != nil {
			t.Fatalf("after unassigning, assigned_to = %v (present %v)", v, ok)
		}
		h.problem(h.do("PUT", "/partners/blog/assigned-to", map[string]any{}), 422, "user")
		h.problem(h.do("PUT", "/partners/blog/assigned-to", map[string]any{"user": "Ann Smith"}), 422, "user")
		h.problem(h.do("PUT", "/partners/blog/assigned-to", map[string]any{"user": 7}), 422, "user")
		h.problem(h.do("PUT", "/partners/blog/assigned-to", map[string]any{"user": ""}), 422, "user")
		h.problem(h.do("PUT", "/partners/blog/assigned-to", `{"user":`), 400)
		h.problem(h.do("PUT", "/partners/nosuch/assigned-to", map[string]any{"user": "ann"}), 404)

		r = h.expect(200, "PUT", "/partners/blog/prospect-stage", map[string]any{"stage": "outreach"})
		got := h.read("blog", r)
		if got["prospect_stage"] != "outreach" || got["relationship_stage"] != "outreach" {
			t.Fatalf("after setting the prospect stage: %v / %v", got["prospect_stage"], got["relationship_stage"])
		}
		h.problem(h.do("PUT", "/partners/blog/prospect-stage", map[string]any{"stage": "maybe"}), 422, "stage")
		h.problem(h.do("PUT", "/partners/blog/prospect-stage", map[string]any{}), 422, "stage")
		h.mustCreate("/template-terms", map[string]any{"id": "gold", "name": "Gold"})
		h.expect(200, "POST", "/partners/blog/contract/propose", map[string]any{"template_term_id": "gold"})
		h.problem(h.do("PUT", "/partners/blog/prospect-stage", map[string]any{"stage": "new"}), 409)
	})
}

func TestNotesOverHTTP(t *testing.T) {
	backends(t, dbPartnerActions, func(t *testing.T, h *harness) {
		h.mustCreate("/partners", map[string]any{"partner_id": "blog", "name": "Blog", "relationship_type": "direct"})
		var ids []string
		for i, text := range []string{"Prefers calls.", "Called on Monday.", "Sent the deck."} {
			r := h.expect(201, "POST", "/partners/blog/notes", map[string]any{"text": text}, "X-Actor", "jane@brand.example")
			n := r.json(t)
			if n["text"] != text || !strings.HasPrefix(n["author"].(string), "user:jane@brand.example via apikey:") ||
				n["created_at"] == nil || n["version"] != 1.0 || n["position"] == "" || r.header.Get("X-Position") == "" {
				t.Fatalf("note %d = %s", i, r.body)
			}
			ids = append(ids, n["id"].(string))
		}
		page := h.expect(200, "GET", "/partners/blog/notes?limit=2", nil).json(t)
		items := page["items"].([]any)
		if page["total"] != 3.0 || len(items) != 2 || items[0].(map[string]any)["id"] != ids[2] || items[0].(map[string]any)["version"] != 1.0 || page["next_cursor"] != ids[1] {
			t.Fatalf("first page = %v", page)
		}
		page = h.expect(200, "GET", "/partners/blog/notes?limit=2&cursor="+ids[1], nil).json(t)
		if items := page["items"].([]any); len(items) != 1 || items[0].(map[string]any)["text"] != "Prefers calls." || page["next_cursor"] != nil {
			t.Fatalf("second page = %v", page)
		}
		// The text is in no read model; in the log it sits under personal.
		if doc := h.expect(200, "GET", "/partners/blog", nil); strings.Contains(string(doc.body), "Prefers calls") {
			t.Fatalf("the partner read model holds a note: %s", doc.body)
		}
		hist := h.expect(200, "GET", "/partners/blog/history", nil).json(t)["items"].([]any)
		last := hist[len(hist)-1].(map[string]any)
		if data := last["data"].(map[string]any); last["type"] != "partner.note_added" || data["text"] != nil ||
			data["personal"].(map[string]any)["text"] != "Sent the deck." {
			t.Fatalf("last event = %v", last)
		}
		h.problem(h.do("POST", "/partners/blog/notes", map[string]any{"text": " "}), 422, "text")
		h.problem(h.do("POST", "/partners/blog/notes", map[string]any{"text": strings.Repeat("x", 10001)}), 422, "text")
		h.problem(h.do("POST", "/partners/blog/notes", map[string]any{}), 422, "text")
		h.problem(h.do("POST", "/partners/blog/notes", map[string]any{"text": "x", "pinned": true}), 422, "pinned")
		h.problem(h.do("POST", "/partners/nosuch/notes", map[string]any{"text": "x"}), 404)
		h.problem(h.do("GET", "/partners/nosuch/notes", nil), 404)
		h.problem(h.do("GET", "/partners/blog/notes?cursor=n_nosuch", nil), 400)
	})
}

func TestSettingsOverHTTP(t *testing.T) {
	backends(t, dbPartnerActions, func(t *testing.T, h *harness) {
		created := h.mustCreate("/partners", map[string]any{"partner_id": "blog", "name": "Blog", "relationship_type": "direct"})
		want := `{"client_cost":{"default_cost_type":null,"enabled":false,"exceptions":[]},"compliance":{"audit_rate":0,"review_schedule":"none"},"tracking":{"postback_url":null,"tracking_pixel":false}}`
		if got := jsonString(t, created["settings"]); got != want {
			t.Fatalf("default settings = %s\nwant %s", got, want)
		}
		h.expect(200, "PUT", "/partners/blog/settings/tracking", map[string]any{"postback_url": "https://track.example/pb?c={click}", "tracking_pixel": true})
		h.expect(200, "PUT", "/partners/blog/settings/client-cost", map[string]any{"enabled": true, "default_cost_type": "cpa",
			"exceptions": []any{map[string]any{"action_tracker_id": "signup", "cost_type": "flat"}}})
		r := h.expect(200, "PUT", "/partners/blog/settings/compliance", map[string]any{"review_schedule": "quarterly", "audit_rate": 12.5})
		want = `{"client_cost":{"default_cost_type":"cpa","enabled":true,"exceptions":[{"action_tracker_id":"signup","cost_type":"flat"}]},"compliance":{"audit_rate":12.5,"review_schedule":"quarterly"},"tracking":{"postback_url":"https://track.example/pb?c={click}","tracking_pixel":true}}`
		if got := jsonString(t, r.json(t)["settings"]); got != want {
			t.Fatalf("settings answer = %s\nwant %s", got, want)
		}
		if got := jsonString(t, h.read("blog", r)["settings"]); got != want {
			t.Fatalf("read model settings = %s\nwant %s", got, want)
		}
		head := h.head()
		h.expect(200, "PUT", "/partners/blog/settings/compliance", map[string]any{"review_schedule": "quarterly", "audit_rate": 12.5})
		if h.head() != head {
			t.Fatal("equal settings appended an event")
		}
		h.problem(h.do("PUT", "/partners/blog/settings/payout", map[string]any{}), 404)
		h.problem(h.do("PUT", "/partners/blog/settings/tracking", map[string]any{"postback_url": "ftp://x.example"}), 422, "tracking_pixel")
		h.problem(h.do("PUT", "/partners/blog/settings/tracking", map[string]any{"postback_url": "javascript:alert(1)", "tracking_pixel": false}), 422, "postback_url")
		h.problem(h.do("PUT", "/partners/blog/settings/client-cost", map[string]any{"enabled": true}), 422, "default_cost_type")
		h.problem(h.do("PUT", "/partners/blog/settings/client-cost", map[string]any{"enabled": true, "default_cost_type": "cpa",
			"exceptions": []any{map[string]any{"action_tracker_id": "a", "cost_type": "cpa", "note": "x"}}}), 422, "note")
		h.problem(h.do("PUT", "/partners/blog/settings/compliance", map[string]any{"review_schedule": "daily", "audit_rate": 101}), 422,
			"review_schedule", "audit_rate")
		h.problem(h.do("PUT", "/partners/blog/settings/compliance", map[string]any{"audit_rate": "high"}), 422, "audit_rate")
		h.problem(h.do("PUT", "/partners/blog/settings/compliance", map[string]any{}), 422, "review_schedule", "audit_rate")
		h.problem(h.do("PUT", "/partners/nosuch/settings/compliance", map[string]any{"review_schedule": "none", "audit_rate": 0}), 404)
	})
}

func TestAccountLinksOverHTTP(t *testing.T) {
	backends(t, dbPartnerActions, func(t *testing.T, h *harness) {
		for _, id := range []string{"blog", "shop"} {
			h.mustCreate("/partners", map[string]any{"partner_id": id, "name": id, "relationship_type": "direct"})
		}
		r := h.expect(200, "POST", "/partners/blog/links", map[string]any{"partner_id": "shop", "reason": "same owner"})
		links := r.json(t)["links"].([]any)
		if len(links) != 1 || links[0].(map[string]any)["partner_id"] != "shop" || links[0].(map[string]any)["reason"] != "same owner" {
			t.Fatalf("links = %v", links)
		}
		// The mirror is on the other partner; the answer's position is past it.
		shop := h.readAt("shop", h.tokenOf("shop"))
		if l := shop["links"].([]any); len(l) != 1 || l[0].(map[string]any)["partner_id"] != "blog" {
			t.Fatalf("shop's links = %v", shop["links"])
		}
		if pos := r.json(t)["position"].(string); pos != fmt.Sprint(h.head()) {
			t.Fatalf("position %s, want the mirror's %d", pos, h.head())
		}
		h.problem(h.do("POST", "/partners/blog/links", map[string]any{"partner_id": "shop", "reason": "again"}), 409)
		h.problem(h.do("POST", "/partners/shop/links", map[string]any{"partner_id": "blog", "reason": "again"}), 409)
		h.problem(h.do("POST", "/partners/blog/links", map[string]any{"partner_id": "blog", "reason": "x"}), 422, "partner_id")
		h.problem(h.do("POST", "/partners/blog/links", map[string]any{"partner_id": "nosuch", "reason": "x"}), 422, "partner_id")
		h.problem(h.do("POST", "/partners/blog/links", map[string]any{"partner_id": "shop"}), 422, "reason")
		h.problem(h.do("POST", "/partners/nosuch/links", map[string]any{"partner_id": "shop", "reason": "x"}), 404)

		r = h.expect(200, "DELETE", "/partners/shop/links/blog?reason=sold", nil)
		if l := r.json(t)["links"].([]any); len(l) != 0 {
			t.Fatalf("links after unlinking = %v", l)
		}
		if l := h.readAt("blog", h.tokenOf("blog"))["links"].([]any); len(l) != 0 {
			t.Fatalf("blog's links after unlinking from shop = %v", l)
		}
		hist := h.expect(200, "GET", "/partners/blog/history", nil).json(t)["items"].([]any)
		last := hist[len(hist)-1].(map[string]any)
		if data := last["data"].(map[string]any); last["type"] != "partner.account_unlinked" || data["reason"] != "sold" || data["initiated_by"] != "shop" {
			t.Fatalf("blog's last event = %v", last)
		}
		h.problem(h.do("DELETE", "/partners/shop/links/blog", map[string]any{"reason": "again"}), 404)
		h.problem(h.do("DELETE", "/partners/shop/links/blog?reason=a", map[string]any{"reason": "b"}), 400)
	})
}

func TestMessagesAndInvitesOverHTTP(t *testing.T) {
	backends(t, dbPartnerActions, func(t *testing.T, h *harness) {
		h.mustCreate("/partners", map[string]any{"partner_id": "blog", "name": "Blog", "relationship_type": "direct", "email": "ed@blog.example"})
		h.mustCreate("/partners", map[string]any{"partner_id": "quiet", "name": "Quiet", "relationship_type": "direct"})

		r := h.expect(202, "POST", "/partners/blog/messages", map[string]any{"subject": "Welcome", "body": "Glad to have you.", "channel": "email"})
		m := r.json(t)
		if !strings.HasPrefix(m["message_id"].(string), "m_") || m["channel"] != "email" || m["position"] == "" {
			t.Fatalf("message answer = %s", r.body)
		}
		if got := h.read("blog", r); got["prospect_stage"] != "outreach" {
			t.Fatalf("a message to a new prospect left prospect stage %v", got["prospect_stage"])
		}
		hist := h.expect(200, "GET", "/partners/blog/history", nil).json(t)["items"].([]any)
		var sent map[string]any
		for _, e := range hist {
			if e.(map[string]any)["type"] == "partner.message_sent" {
				sent = e.(map[string]any)["data"].(map[string]any)
			}
		}
		if sent == nil || sent["subject"] != nil || sent["message_id"] != m["message_id"] ||
			jsonString(t, sent["personal"]) != `{"body":"Glad to have you.","subject":"Welcome","to":"ed@blog.example"}` {
			t.Fatalf("message_sent data = %v", sent)
		}
		h.expect(202, "POST", "/partners/quiet/messages", map[string]any{"subject": "Hi", "body": "In the inbox."})
		h.problem(h.do("POST", "/partners/quiet/messages", map[string]any{"subject": "Hi", "body": "x", "channel": "email"}), 409)
		h.problem(h.do("POST", "/partners/blog/messages", map[string]any{"body": "x", "channel": "sms"}), 422, "channel", "subject")
		h.problem(h.do("POST", "/partners/nosuch/messages", map[string]any{"subject": "Hi", "body": "x"}), 404)

		r = h.expect(202, "POST", "/partners/blog/invites", map[string]any{"kind": "campaign", "target_id": "summer-2026", "message": "Join us"})
		if inv := r.json(t); !strings.HasPrefix(inv["invite_id"].(string), "i_") || inv["kind"] != "campaign" || inv["target_id"] != "summer-2026" {
			t.Fatalf("invite answer = %s", r.body)
		}
		h.expect(202, "POST", "/partners/quiet/invites", map[string]any{"kind": "survey", "target_id": "nps"})
		h.problem(h.do("POST", "/partners/blog/invites", map[string]any{"kind": "party", "target_id": ""}), 422, "kind", "target_id")
		h.problem(h.do("POST", "/partners/nosuch/invites", map[string]any{"kind": "survey", "target_id": "nps"}), 404)
		types := []string{}
		for _, e := range h.expect(200, "GET", "/partners/blog/history", nil).json(t)["items"].([]any) {
			types = append(types, e.(map[string]any)["type"].(string))
		}
		if !slices.Contains(types, "partner.invited") || !slices.Contains(types, "partner.prospect_stage_changed") {
			t.Fatalf("blog's events = %v", types)
		}
	})
}
