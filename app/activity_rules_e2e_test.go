package app_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/app"
)

// Databases of the activity ingest-rule tests (after the 16-31 block).
const (
	dbActivityFlavors = 32
	dbActivityMaxAge  = 33
	dbActivityNoAge   = 34
)

// Flavors are free-form tokens: one outside domain.ActivityFlavors is
// recorded, listed and streamed; one that breaks the token rule is 422 on
// ingest, on the feed and on the stream.
func TestActivityFreeFormFlavors(t *testing.T) {
	backends(t, dbActivityFlavors, func(t *testing.T, h *harness) {
		h.mustPartner("p1")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		logins, err := h.stream(ctx, "?flavor=login")
		if err != nil {
			t.Fatalf("stream ?flavor=login: %v", err)
		}
		defer logins.close()

		r := h.do("POST", "/activities", map[string]any{"activity_id": "l1", "partner_id": "p1", "flavor": "login"})
		if r.status != 202 || r.json(t)["flavor"] != "login" {
			t.Fatalf("flavor login: %d %s", r.status, r.body)
		}
		tok := r.json(t)["consistency_token"].(string)
		r = h.do("POST", "/activities", map[string]any{"activities": []any{
			map[string]any{"activity_id": "l2", "partner_id": "p1", "flavor": "Shop:cart-item_added.v2"},
			map[string]any{"activity_id": "l3", "partner_id": "p1", "flavor": "logged_in"},
		}})
		if r.status != 202 || r.json(t)["accepted"] != 2.0 {
			t.Fatalf("batch of free-form flavors: %d %s", r.status, r.body)
		}
		if err := h.app.WaitCaughtUp(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ids, _ := h.feed("?flavor=login", tok); strings.Join(ids, ",") != "l1" {
			t.Fatalf("feed ?flavor=login = %v", ids)
		}
		if ids, _ := h.feed("?flavor="+url.QueryEscape("Shop:cart-item_added.v2")+"&flavor=login", ""); len(ids) != 2 || !slices.Contains(ids, "l1") || !slices.Contains(ids, "l2") {
			t.Fatalf("feed of two free-form flavors = %v", ids)
		}
		if ids, _ := h.feed("?flavor=teleported", ""); len(ids) != 0 {
			t.Fatalf("feed of a flavor nobody sent = %v", ids)
		}
		ev, err := logins.next()
		if err != nil || activityID(t, ev) != "l1" {
			t.Fatalf("stream ?flavor=login: %v %v", ev, err)
		}

		head := h.head()
		for _, bad := range []string{"logged in", strings.Repeat("f", 65), ".login"} {
			r := h.do("POST", "/activities", map[string]any{"partner_id": "p1", "flavor": bad})
			var p struct {
				Errors []struct{ Field, Message string }
			}
			_ = json.Unmarshal(r.body, &p)
			if r.status != 422 || len(p.Errors) != 1 || p.Errors[0].Field != "flavor" || !strings.Contains(p.Errors[0].Message, "1-64 of letters, digits") {
				t.Errorf("flavor %q: %d %s", bad, r.status, r.body)
			}
			q := "?flavor=" + url.QueryEscape(bad)
			if r := h.do("GET", "/activities"+q, nil); r.status != 422 || !strings.Contains(string(r.body), `"flavor"`) {
				t.Errorf("GET /activities%s: %d %s", q, r.status, r.body)
			}
			if r := h.do("GET", "/activities/stream"+q, nil); r.status != 422 {
				t.Errorf("GET /activities/stream%s: %d %s", q, r.status, r.body)
			}
		}
		if h.head() != head {
			t.Fatal("an activity with a bad flavor was appended")
		}
	})
}

// An activity older than the feed keeps (PARTNERD_ACTIVITY_MAX_AGE) is
// refused with a field error on occurred_at, alone (422) or in a batch
// (that item "error", the others kept), and nothing is appended for it.
func TestActivityOlderThanFeedKeepsIsRejected(t *testing.T) {
	backendsWith(t, dbActivityMaxAge, func(c *app.Config) { c.ActivityMaxAge = 30 * 24 * time.Hour }, func(t *testing.T, h *harness) {
		h.mustPartner("p1")
		old := time.Now().UTC().Add(-31 * 24 * time.Hour).Format(time.RFC3339)
		fresh := time.Now().UTC().Add(-29 * 24 * time.Hour).Format(time.RFC3339)

		head := h.head()
		r := h.do("POST", "/activities", map[string]any{"activity_id": "old1", "partner_id": "p1", "flavor": "logged_in", "occurred_at": old})
		var p struct {
			Errors []struct{ Field, Message string }
		}
		_ = json.Unmarshal(r.body, &p)
		if r.status != 422 || len(p.Errors) != 1 || p.Errors[0].Field != "occurred_at" ||
			p.Errors[0].Message != "is older than the activity feed keeps (PARTNERD_ACTIVITY_MAX_AGE = 720h0m0s)" {
			t.Fatalf("old single: %d %s", r.status, r.body)
		}
		if h.head() != head {
			t.Fatal("an activity older than the feed keeps was appended")
		}

		r = h.do("POST", "/activities", map[string]any{"activities": []any{
			map[string]any{"activity_id": "old2", "partner_id": "p1", "flavor": "logged_in", "occurred_at": old},
			map[string]any{"activity_id": "fresh", "partner_id": "p1", "flavor": "logged_in", "occurred_at": fresh},
		}})
		var ans struct {
			Results []struct {
				Index  int
				Status string
				Error  string
				Errors []struct{ Field, Message string }
			}
			Accepted, Rejected int
		}
		_ = json.Unmarshal(r.body, &ans)
		if r.status != 202 || len(ans.Results) != 2 || ans.Accepted != 1 || ans.Rejected != 1 {
			t.Fatalf("batch: %d %s", r.status, r.body)
		}
		if o := ans.Results[0]; o.Status != "error" || len(o.Errors) != 1 || o.Errors[0].Field != "occurred_at" || !strings.Contains(o.Error, "PARTNERD_ACTIVITY_MAX_AGE") {
			t.Fatalf("old item: %+v", o)
		}
		if o := ans.Results[1]; o.Status != "accepted" {
			t.Fatalf("fresh item: %+v", o)
		}
		if err := h.app.WaitCaughtUp(context.Background()); err != nil {
			t.Fatal(err)
		}
		if ids, page := h.feed("", ""); strings.Join(ids, ",") != "fresh" || page["total"] != 1.0 {
			t.Fatalf("feed = %v (%v)", ids, page)
		}
		// The log holds the fresh activity only.
		r = h.do("GET", "/partners/p1/history?include=activity", nil)
		if r.status != 200 || strings.Count(string(r.body), "activity.recorded") != 1 || strings.Contains(string(r.body), `"old1"`) || strings.Contains(string(r.body), `"old2"`) {
			t.Fatalf("history: %d %s", r.status, r.body)
		}
	})
}

// With PARTNERD_ACTIVITY_MAX_AGE=0 the feed keeps everything, and ingest
// refuses only what is before the year 2000.
func TestActivityNoMaxAgeKeepsOldActivities(t *testing.T) {
	backendsWith(t, dbActivityNoAge, func(c *app.Config) { c.ActivityMaxAge = 0 }, func(t *testing.T, h *harness) {
		h.mustPartner("p1")
		r := h.do("POST", "/activities", map[string]any{"activity_id": "y2001", "partner_id": "p1", "flavor": "logged_in", "occurred_at": "2001-06-01T12:00:00Z"})
		if r.status != 202 {
			t.Fatalf("2001 activity: %d %s", r.status, r.body)
		}
		if ids, _ := h.feed("", r.json(t)["consistency_token"].(string)); strings.Join(ids, ",") != "y2001" {
			t.Fatalf("feed = %v", ids)
		}
		if r := h.do("POST", "/activities", map[string]any{"partner_id": "p1", "flavor": "logged_in", "occurred_at": "1999-12-31T00:00:00Z"}); r.status != 422 || !strings.Contains(string(r.body), "year 2000") {
			t.Fatalf("1999 activity: %d %s", r.status, r.body)
		}
	})
}
