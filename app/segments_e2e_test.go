package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/projections"
)

const (
	dbSegments       = 16
	dbSegmentsReplay = 17
)

// settle waits until the log is projected and the segment outbox drained
// into it, and nothing new arrives.
func (h *harness) settle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if err := h.app.WaitCaughtUp(ctx); err != nil {
			h.t.Fatal(err)
		}
		head := h.head()
		n, err := h.app.Redis.LLen(ctx, projections.SegmentOutKeys("acme").Outbox()).Result()
		if err != nil {
			h.t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond) // > the outbox poll interval
		if n == 0 && h.head() == head {
			if err := h.app.WaitCaughtUp(ctx); err != nil {
				h.t.Fatal(err)
			}
			return
		}
	}
}

// membership is a segment's members stream as "+partner" / "-partner".
func (h *harness) membership(seg string) []string {
	h.t.Helper()
	var evs []eventstore.RecordedEvent
	for {
		page, err := h.app.Store.ReadStream(context.Background(), domain.SegmentMembersStream("acme", seg), uint64(len(evs)), eventstore.Forwards, 10000)
		if err != nil {
			h.t.Fatal(err)
		}
		if evs = append(evs, page...); len(page) < 10000 {
			break
		}
	}
	var out []string
	for i, re := range evs {
		var m domain.SegmentMembershipChanged
		if err := json.Unmarshal(re.Data, &m); err != nil {
			h.t.Fatal(err)
		}
		if m.Seq != uint64(i+1) || m.SegmentID != seg || re.ID != projections.MembershipEventID("acme", seg, m.Seq) {
			h.t.Fatalf("membership event %d of %s: %+v id %s", i, seg, m, re.ID)
		}
		sign := "+"
		if re.Type == domain.TypeSegmentPartnerLeft {
			sign = "-"
		}
		out = append(out, sign+m.PartnerID)
	}
	return out
}

func (h *harness) memberIDs(seg string) []string {
	h.t.Helper()
	var ids []string
	cursor := ""
	for {
		r := h.do("GET", "/segments/"+seg+"/members?limit=2"+cursor, nil)
		if r.status != 200 {
			h.t.Fatalf("members of %s: %d %s", seg, r.status, r.body)
		}
		page := r.json(h.t)
		for _, it := range page["items"].([]any) {
			ids = append(ids, it.(map[string]any)["partner_id"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			if int(page["total"].(float64)) != len(ids) {
				h.t.Fatalf("members of %s: total %v, %d items", seg, page["total"], len(ids))
			}
			return ids
		}
		cursor = "&cursor=" + next
	}
}

func (h *harness) previewIDs(conds any) []string {
	h.t.Helper()
	var ids []string
	cursor := ""
	for {
		r := h.do("POST", "/segments/preview?limit=2"+cursor, map[string]any{"conditions": conds})
		if r.status != 200 {
			h.t.Fatalf("preview: %d %s", r.status, r.body)
		}
		page := r.json(h.t)
		for _, it := range page["items"].([]any) {
			ids = append(ids, it.(map[string]any)["partner_id"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			if int(page["total"].(float64)) != len(ids) {
				h.t.Fatalf("preview: total %v, %d items", page["total"], len(ids))
			}
			return ids
		}
		cursor = "&cursor=" + next
	}
}

func rows(rs ...map[string]any) map[string]any {
	all := make([]any, len(rs))
	for i, r := range rs {
		all[i] = r
	}
	return map[string]any{"any": []any{map[string]any{"all": all}}}
}

func row(field, op string, values ...any) map[string]any {
	return map[string]any{"field": field, "op": op, "values": values}
}

// seedSegmentPartners creates six partners in DE/FR with various reach.
func seedSegmentPartners(h *harness) {
	for i, p := range []struct {
		id, country string
		reach       int
	}{{"p1", "DE", 100}, {"p2", "DE", 5000}, {"p3", "FR", 9000}, {"p4", "DE", 20000}, {"p5", "US", 50}, {"p6", "DE", 7000}} {
		h.mustCreate("/partners", map[string]any{"partner_id": p.id, "name": fmt.Sprintf("Partner %d", i+1), "relationship_type": "direct",
			"country": p.country, "social_reach": p.reach, "custom_fields": map[string]string{"tier": []string{"gold", "silver"}[i%2]}})
	}
}

func TestSegmentsOverHTTP(t *testing.T) {
	backends(t, dbSegments, func(t *testing.T, h *harness) {
		seedSegmentPartners(h)
		h.mustCreate("/groups", map[string]any{"id": "vip", "name": "VIP"})
		h.mustCreate("/groups", map[string]any{"id": "gone", "name": "Gone"})
		if r := h.do("DELETE", "/groups/gone", nil); r.status != 204 {
			t.Fatalf("delete group: %d %s", r.status, r.body)
		}
		h.settle()

		// Validation: 422 naming the row, nothing appended.
		head := h.head()
		for _, tc := range []struct {
			body  any
			field string
		}{
			{map[string]any{"name": "x", "conditions": rows(row("country", "eq", "DE"), row("colour", "eq", "red"))}, "conditions.any[0].all[1].field"},
			{map[string]any{"name": "x", "conditions": rows(row("country", "gte", "DE"))}, "conditions.any[0].all[0].op"},
			{map[string]any{"name": "x", "conditions": rows(row("social_reach", "gte", "many"))}, "conditions.any[0].all[0].values[0]"},
			{map[string]any{"name": "x", "conditions": rows(row("date_joined", "lte", "soon"))}, "conditions.any[0].all[0].values[0]"},
			{map[string]any{"name": "x", "conditions": rows(row("group", "any_of"))}, "conditions.any[0].all[0].values"},
			// Groups and template terms that do not exist (or a deleted group)
			// are refused, as everywhere else they are used.
			{map[string]any{"name": "x", "conditions": rows(row("group", "any_of", "vip", "nosuch"))}, "conditions.any[0].all[0].values[1]"},
			{map[string]any{"name": "x", "conditions": rows(row("country", "eq", "DE"), row("group", "none_of", "gone"))}, "conditions.any[0].all[1].values[0]"},
			{map[string]any{"name": "x", "conditions": rows(row("template_term", "any_of", "nosuch"))}, "conditions.any[0].all[0].values[0]"},
			{map[string]any{"name": "x"}, "conditions"},
			{map[string]any{"conditions": rows(row("country", "eq", "DE"))}, "name"},
		} {
			r := h.do("POST", "/segments", tc.body)
			if r.status != 422 || !slices.Contains(problemFields(t, r), tc.field) {
				t.Errorf("POST /segments %v: %d %s, want 422 naming %s", tc.body, r.status, r.body, tc.field)
			}
		}
		if r := h.do("POST", "/segments/preview", map[string]any{"conditions": rows(row("size", "contains", "x"))}); r.status != 422 ||
			!reflect.DeepEqual(problemFields(t, r), []string{"conditions.any[0].all[0].op"}) {
			t.Errorf("bad preview: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/segments/preview", map[string]any{"conditions": rows(row("group", "any_of", "VIP"))}); r.status != 422 ||
			!reflect.DeepEqual(problemFields(t, r), []string{"conditions.any[0].all[0].values[0]"}) {
			t.Errorf("preview by a group's name, not its ID: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/segments/preview", map[string]any{"conditions": rows(row("group", "any_of", "vip"))}); r.status != 200 {
			t.Errorf("preview of a live group: %d %s", r.status, r.body)
		}
		if h.head() != head {
			t.Fatal("refused segment writes appended events")
		}

		// Preview == the saved segment's membership.
		big := rows(row("country", "any_of", "DE", "FR"), row("social_reach", "gte", 5000))
		preview := h.previewIDs(big)
		if !reflect.DeepEqual(preview, []string{"p2", "p3", "p4", "p6"}) {
			t.Fatalf("preview = %v", preview)
		}
		created := h.mustCreate("/segments", map[string]any{"id": "big", "name": "Big in DE/FR", "conditions": big})
		if created["id"] != "big" || created["version"] != 1.0 {
			t.Fatalf("created = %v", created)
		}
		gold := h.mustCreate("/segments", map[string]any{"id": "gold", "name": "Gold", "conditions": rows(row("custom.tier", "eq", "gold"))})
		h.settle()
		if got := h.memberIDs("big"); !reflect.DeepEqual(got, preview) {
			t.Fatalf("saved members %v, preview %v", got, preview)
		}
		if got, want := h.memberIDs("gold"), h.previewIDs(gold["conditions"]); !reflect.DeepEqual(got, want) || len(got) != 3 {
			t.Fatalf("gold members %v, preview %v", got, want)
		}
		if g := h.do("GET", "/segments/big", nil).json(t); g["name"] != "Big in DE/FR" {
			t.Fatalf("GET segment = %v", g)
		}
		if l := h.do("GET", "/segments", nil).json(t); l["total"] != 2.0 {
			t.Fatalf("segment list = %v", l)
		}

		// A partner change moves membership (only that partner's).
		if r := h.do("PATCH", "/partners/p1", map[string]any{"social_reach": 6000}); r.status != 200 {
			t.Fatalf("patch p1: %d %s", r.status, r.body)
		}
		if r := h.do("PATCH", "/partners/p4", map[string]any{"country": "US"}); r.status != 200 {
			t.Fatalf("patch p4: %d %s", r.status, r.body)
		}
		h.settle()
		if got := h.memberIDs("big"); !reflect.DeepEqual(got, []string{"p1", "p2", "p3", "p6"}) {
			t.Fatalf("after partner changes: %v", got)
		}

		// A conditions change recomputes.
		r := h.do("PUT", "/segments/big", map[string]any{"name": "Big in DE", "conditions": rows(row("country", "eq", "DE"), row("social_reach", "gte", 5000))})
		if r.status != 200 || r.json(t)["version"] != 3.0 {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
		h.settle()
		if got := h.memberIDs("big"); !reflect.DeepEqual(got, []string{"p1", "p2", "p6"}) {
			t.Fatalf("after conditions change: %v", got)
		}

		// Delete removes the membership.
		if r := h.do("DELETE", "/segments/big", nil); r.status != 204 {
			t.Fatalf("DELETE: %d %s", r.status, r.body)
		}
		h.settle()
		if r := h.do("GET", "/segments/big/members", nil); r.status != 404 {
			t.Fatalf("members of a deleted segment: %d", r.status)
		}
		if r := h.do("GET", "/segments/big", nil); r.status != 404 {
			t.Fatalf("deleted segment: %d", r.status)
		}
		if n, _ := h.app.Redis.Exists(t.Context(), projections.NewKeyspace("segments", h.app.Generation("segments"), "acme").Key("members", "big")).Result(); n != 0 {
			t.Fatal("a deleted segment kept its members set")
		}

		// Every change became exactly one event, in order.
		want := []string{"+p2", "+p3", "+p4", "+p6", "+p1", "-p4", "-p3", "-p1", "-p2", "-p6"}
		if got := h.membership("big"); !reflect.DeepEqual(got, want) {
			t.Fatalf("membership events of big = %v, want %v", got, want)
		}
	})
}

// TestSegmentMembershipEventsAreNotRepeated: a redelivery of every event
// to the projection, a rebuild, and a drain that crashed before trimming
// the outbox add no membership event and change no membership.
func TestSegmentMembershipEventsAreNotRepeated(t *testing.T) {
	backends(t, dbSegmentsReplay, func(t *testing.T, h *harness) {
		ctx := t.Context()
		seedSegmentPartners(h)
		h.mustCreate("/segments", map[string]any{"id": "de", "name": "DE", "conditions": rows(row("country", "eq", "DE"))})
		// Segment and partner events travel on different streams: without
		// this wait the segment's first computation may already see p2 in
		// FR, and p2 then rightly never enters (nor leaves).
		h.settle()
		h.do("PATCH", "/partners/p2", map[string]any{"country": "FR"})
		h.settle()
		want := []string{"+p1", "+p2", "+p4", "+p6", "-p2"}
		if got := h.membership("de"); !reflect.DeepEqual(got, want) {
			t.Fatalf("membership events = %v, want %v", got, want)
		}
		// The same over HTTP, paged and filtered like any history.
		var overHTTP []string
		for cursor := ""; ; {
			page := h.expect(200, "GET", "/segments/de/members/history?limit=2"+cursor, nil).json(t)
			for _, it := range page["items"].([]any) {
				e := it.(map[string]any)
				sign := map[string]string{domain.TypeSegmentPartnerEntered: "+", domain.TypeSegmentPartnerLeft: "-"}[e["type"].(string)]
				overHTTP = append(overHTTP, sign+e["data"].(map[string]any)["partner_id"].(string))
			}
			if page["total"] != 5.0 {
				t.Fatalf("membership history total %v, want 5", page["total"])
			}
			if page["next_cursor"] == nil {
				break
			}
			cursor = "&cursor=" + page["next_cursor"].(string)
		}
		if !reflect.DeepEqual(overHTTP, want) {
			t.Fatalf("GET /segments/de/members/history = %v, want %v", overHTTP, want)
		}
		if left := h.expect(200, "GET", "/segments/de/members/history?type="+domain.TypeSegmentPartnerLeft, nil).json(t); left["total"] != 1.0 {
			t.Fatalf("membership history of leaves: %v", left)
		}
		h.mustCreate("/segments", map[string]any{"id": "nobody", "name": "Nobody", "conditions": rows(row("country", "eq", "JP"))})
		h.settle()
		if none := h.expect(200, "GET", "/segments/nobody/members/history", nil).json(t); none["total"] != 0.0 || len(none["items"].([]any)) != 0 {
			t.Fatalf("a segment nobody ever entered: %v", none)
		}
		h.expect(404, "GET", "/segments/nosuch/members/history", nil)
		head := h.head()

		// 1. Redeliver the whole log to the live runner.
		var runner *projections.Runner
		for _, r := range h.app.Runners {
			if r.Projection().Name() == "segments" {
				runner = r
			}
		}
		recs, err := h.app.Store.ReadAll(ctx, 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		var evs []projections.Event
		for _, re := range recs {
			if slices.Contains(runner.Projection().Topics(), bus.Topic(domain.Category(re.StreamID))) {
				evs = append(evs, bus.EnvelopeOf(re))
			}
		}
		if err := runner.Apply(ctx, evs); err != nil {
			t.Fatal(err)
		}
		h.settle()
		if h.head() != head {
			t.Fatalf("redelivery appended %d events", h.head()-head)
		}

		// 2. Rebuild the projection: same membership, nothing announced.
		if _, err := projections.Rebuild(ctx, h.app.Redis, h.app.Store, runner.Projection(), nil); err != nil {
			t.Fatal(err)
		}
		if err := runner.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		h.settle()
		if h.head() != head {
			t.Fatalf("rebuild appended %d events", h.head()-head)
		}
		if got := h.memberIDs("de"); !reflect.DeepEqual(got, []string{"p1", "p4", "p6"}) {
			t.Fatalf("members after rebuild = %v", got)
		}

		// 3. A drain that crashed after appending but before trimming: the
		// entries come back and are dropped as done.
		out := projections.SegmentOutKeys("acme")
		stored, err := h.app.Store.ReadStream(ctx, domain.SegmentMembersStream("acme", "de"), 3, eventstore.Forwards, 2)
		if err != nil || len(stored) != 2 {
			t.Fatalf("members stream: %d events, %v", len(stored), err)
		}
		var replayed []any
		for _, re := range stored {
			var m domain.SegmentMembershipChanged
			if err := json.Unmarshal(re.Data, &m); err != nil {
				t.Fatal(err)
			}
			action := "leave"
			if re.Type == domain.TypeSegmentPartnerEntered {
				action = "enter"
			}
			payload, _ := json.Marshal(map[string]string{"segment_id": "de", "partner_id": m.PartnerID,
				"causation_event_id": m.CausationEventID, "at": m.At.Format(time.RFC3339Nano)})
			replayed = append(replayed, fmt.Sprintf("%d|%s|%s", m.Seq, action, payload))
		}
		if err := h.app.Redis.RPush(ctx, out.Outbox(), replayed...).Err(); err != nil {
			t.Fatal(err)
		}
		h.settle()
		if got := h.membership("de"); !reflect.DeepEqual(got, want) {
			t.Fatalf("membership events after a repeated drain = %v, want %v", got, want)
		}

		// 4. And the projection still follows changes afterwards.
		h.do("PATCH", "/partners/p5", map[string]any{"country": "DE"})
		h.settle()
		if got := h.membership("de"); !reflect.DeepEqual(got, append(want, "+p5")) {
			t.Fatalf("membership events after a change = %v", got)
		}
	})
}

const dbSegmentsDeletedGroup = 43

// A group deleted after a segment was saved stays in its conditions
// (matching nobody): the segment can still be renamed with the conditions
// it was saved with, while naming another deleted group is refused.
func TestSegmentKeepsAGroupDeletedAfterIt(t *testing.T) {
	backends(t, dbSegmentsDeletedGroup, func(t *testing.T, h *harness) {
		seedSegmentPartners(h)
		h.mustCreate("/groups", map[string]any{"id": "temp", "name": "Temp"})
		h.mustCreate("/groups", map[string]any{"id": "other", "name": "Other"})
		conds := rows(row("country", "eq", "DE"), row("group", "none_of", "temp"))
		h.mustCreate("/segments", map[string]any{"id": "s1", "name": "Germany", "conditions": conds})
		h.expect(204, "DELETE", "/groups/temp", nil)
		h.expect(204, "DELETE", "/groups/other", nil)
		h.settle()
		r := h.do("PUT", "/segments/s1", map[string]any{"name": "Deutschland", "conditions": conds})
		if r.status != 200 || r.json(t)["name"] != "Deutschland" {
			t.Fatalf("rename with the saved conditions: %d %s", r.status, r.body)
		}
		head := h.head()
		more := rows(row("country", "eq", "DE"), row("group", "none_of", "temp", "other"))
		if r := h.do("PUT", "/segments/s1", map[string]any{"name": "Deutschland", "conditions": more}); r.status != 422 ||
			!reflect.DeepEqual(problemFields(t, r), []string{"conditions.any[0].all[1].values[1]"}) {
			t.Fatalf("a newly named deleted group: %d %s, want 422 on values[1]", r.status, r.body)
		}
		if h.head() != head {
			t.Fatal("the refused update appended events")
		}
	})
}
