package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/app"
)

const (
	dbActivity        = 19
	dbActivityStreams = 20
	dbActivityRestart = 21
)

func (h *harness) mustPartner(id string) {
	h.t.Helper()
	r := h.do("POST", "/partners", map[string]any{"partner_id": id, "name": "Partner " + id, "relationship_type": "direct"})
	if r.status != 201 {
		h.t.Fatalf("create partner %s: %d %s", id, r.status, r.body)
	}
}

// feed reads GET /activities with the query (waiting for the projection
// with tok, when given) and returns the activity IDs of one page.
func (h *harness) feed(query, tok string) ([]string, map[string]any) {
	h.t.Helper()
	r := h.do("GET", "/activities"+query, nil, "X-Consistency-Token", tok)
	if r.status != 200 {
		h.t.Fatalf("GET /activities%s: %d %s", query, r.status, r.body)
	}
	page := r.json(h.t)
	var ids []string
	for _, it := range page["items"].([]any) {
		ids = append(ids, it.(map[string]any)["activity_id"].(string))
	}
	return ids, page
}

func TestActivityIngestFeedAndDedupe(t *testing.T) {
	// Fixed dates: keep them whatever day the test runs (no max age).
	backendsWith(t, dbActivity, func(c *app.Config) { c.ActivityMaxAge = 0 }, func(t *testing.T, h *harness) {
		h.mustPartner("p1")
		h.mustPartner("p2")
		// One activity: 202 with every field it was sent with.
		r := h.do("POST", "/activities", map[string]any{"activity_id": "a1", "partner_id": "p1", "flavor": "dashboard_viewed",
			"occurred_at": "2026-11-01T10:00:00Z", "device": "mobile", "platform": "iOS", "browser": "Safari",
			"source_url": "https://partner.example/dash", "referrer_url": "https://mail.example/", "campaign": "black-friday", "message_id": "m1"})
		if r.status != 202 {
			t.Fatalf("single: %d %s", r.status, r.body)
		}
		one := r.json(t)
		if one["activity_id"] != "a1" || one["device"] != "mobile" || one["recorded_at"] == nil || one["campaign"] != "black-friday" {
			t.Fatalf("single answer: %v", one)
		}
		// The same activity again: a duplicate, appended once, whose answer
		// carries a consistency token like every command's.
		head := h.head()
		dup := h.do("POST", "/activities", map[string]any{"activity_id": "a1", "partner_id": "p1", "flavor": "dashboard_viewed",
			"occurred_at": "2026-11-01T10:00:00Z"})
		if d := dup.json(t); dup.status != 202 || d["status"] != "duplicate" || d["consistency_token"] == nil || h.head() != head ||
			d["position"] != one["position"] || dup.header.Get("X-Position") != one["position"] || r.header.Get("X-Position") != one["position"] {
			t.Fatalf("duplicate single: %d %s (X-Position %s; first answer %v, X-Position %s)", dup.status, dup.body,
				dup.header.Get("X-Position"), one["position"], r.header.Get("X-Position"))
		}
		// A bad single activity: 422 naming the fields, nothing appended.
		r = h.do("POST", "/activities", map[string]any{"partner_id": "p1", "flavor": "tele ported", "device": "watch", "source_url": "ftp://x"})
		if r.status != 422 || !strings.Contains(string(r.body), `"flavor"`) || !strings.Contains(string(r.body), `"device"`) || !strings.Contains(string(r.body), `"source_url"`) {
			t.Fatalf("bad single: %d %s", r.status, r.body)
		}
		if r = h.do("POST", "/activities", map[string]any{"partner_id": "nobody", "flavor": "logged_in"}); r.status != 422 || !strings.Contains(string(r.body), "partner_id") {
			t.Fatalf("unknown partner: %d %s", r.status, r.body)
		}
		if h.head() != head {
			t.Fatal("a rejected activity was appended")
		}
		// A batch: bad items reported by index, good ones kept, the repeat of a1 dropped.
		batch := map[string]any{"activities": []any{
			map[string]any{"activity_id": "a2", "partner_id": "p2", "flavor": "message_opened", "message_id": "m1", "occurred_at": "2026-11-01T11:00:00Z"},
			map[string]any{"activity_id": "bad", "partner_id": "p2", "flavor": "no pe"},
			map[string]any{"activity_id": "a1", "partner_id": "p1", "flavor": "dashboard_viewed", "occurred_at": "2026-11-01T10:00:00Z"},
			map[string]any{"activity_id": "a3", "partner_id": "p1", "flavor": "custom.webinar_joined", "occurred_at": "2026-11-01T12:00:00Z"},
			map[string]any{"activity_id": "a4", "partner_id": "p1", "flavor": "link_clicked", "unknown_field": 1},
			map[string]any{"activity_id": "a5", "partner_id": "ghost", "flavor": "link_clicked"},
			map[string]any{"activity_id": "a3", "partner_id": "p1", "flavor": "custom.webinar_joined", "occurred_at": "2026-11-01T12:00:00Z"},
		}}
		r = h.do("POST", "/activities", batch)
		if r.status != 202 {
			t.Fatalf("batch: %d %s", r.status, r.body)
		}
		var ans struct {
			Results []struct {
				Index  int
				Status string
				Error  string
			}
			Accepted, Duplicates, Rejected int
			ConsistencyToken               string `json:"consistency_token"`
		}
		_ = json.Unmarshal(r.body, &ans)
		want := []string{"accepted", "error", "duplicate", "accepted", "error", "error", "duplicate"}
		for i, w := range want {
			if ans.Results[i].Index != i || ans.Results[i].Status != w {
				t.Fatalf("result %d = %+v, want %s (%s)", i, ans.Results[i], w, r.body)
			}
		}
		if ans.Accepted != 2 || ans.Duplicates != 2 || ans.Rejected != 3 || !strings.Contains(ans.Results[4].Error, "unknown_field") {
			t.Fatalf("batch answer %s", r.body)
		}
		// Batch shape errors change nothing.
		head = h.head()
		var tooMany []any
		for i := 0; i < 1001; i++ {
			tooMany = append(tooMany, map[string]any{"partner_id": "p1", "flavor": "logged_in"})
		}
		for name, body := range map[string]any{
			"too many": map[string]any{"activities": tooMany},
			"empty":    map[string]any{"activities": []any{}},
			"both":     map[string]any{"partner_id": "p1", "flavor": "logged_in", "activities": []any{map[string]any{"partner_id": "p1", "flavor": "logged_in"}}},
		} {
			if r := h.do("POST", "/activities", body); r.status != 422 || !strings.Contains(string(r.body), `"activities"`) {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		if r := h.do("POST", "/activities", `{"activities": [`); r.status != 400 {
			t.Errorf("malformed: %d %s", r.status, r.body)
		}
		if r := h.do("POST", "/activities", `{"partner_id": "p1", "flavor": "logged_in", "occurred_at": 5}`); r.status != 422 {
			t.Errorf("wrong type: %d %s", r.status, r.body)
		}
		if h.head() != head {
			t.Fatal("a refused batch appended something")
		}
		// Re-sending the whole batch appends nothing.
		head = h.head()
		if r = h.do("POST", "/activities", batch); r.status != 202 || h.head() != head {
			t.Fatalf("re-sent batch: %d, head %d → %d", r.status, head, h.head())
		}
		// The feed: newest first, filters, all details. (A batch's token
		// names one partner's stream; wait for the whole batch.)
		if err := h.app.WaitCaughtUp(context.Background()); err != nil {
			t.Fatal(err)
		}
		ids, page := h.feed("", ans.ConsistencyToken)
		if strings.Join(ids, ",") != "a3,a2,a1" || page["total"] != 3.0 {
			t.Fatalf("feed = %v (%v)", ids, page)
		}
		first := page["items"].([]any)[2].(map[string]any)
		for _, f := range []string{"device", "platform", "browser", "source_url", "referrer_url", "campaign", "partner_id", "message_id", "occurred_at", "recorded_at"} {
			if first[f] == nil {
				t.Errorf("feed item lacks %s: %v", f, first)
			}
		}
		for q, want := range map[string]string{
			"?partner_id=p1":                            "a3,a1",
			"?partner_id=p1&partner_id=p2":              "a3,a2,a1",
			"?flavor=message_opened&flavor=logged_in":   "a2",
			"?message_id=m1":                            "a2,a1",
			"?message_id=m1&partner_id=p1":              "a1",
			"?partner_id=p1&since=2026-11-01T10:30:00Z": "a3",
			"?until=2026-11-01T11:00:00Z":               "a1",
			"?partner_id=p2&flavor=dashboard_viewed":    "",
		} {
			got, _ := h.feed(q, "")
			if strings.Join(got, ",") != want {
				t.Errorf("feed%s = %v, want %s", q, got, want)
			}
		}
		if r := h.do("GET", "/activities?flavor=tele%20ported", nil); r.status != 422 {
			t.Errorf("invalid flavor filter: %d", r.status)
		}
		if got, _ := h.feed("?flavor=teleported", ""); len(got) != 0 {
			t.Errorf("feed of a flavor nobody sent = %v", got)
		}
		if r := h.do("GET", "/activities?since=yesterday", nil); r.status != 400 {
			t.Errorf("bad since: %d", r.status)
		}
		for _, q := range []string{"since=2026-12-08T00:00:00Z&until=2026-12-07T00:00:00Z", "since=2026-12-08T00:00:00Z&until=2026-12-08T00:00:00Z"} {
			if r := h.do("GET", "/activities?"+q, nil); r.status != 422 || !slices.Contains(problemFields(t, r), "until") {
				t.Errorf("empty window %s: %d %s, want 422 on until", q, r.status, r.body)
			}
		}
		// Paging is stable while new activities arrive.
		ids1, p1 := h.feed("?limit=2", "")
		r = h.do("POST", "/activities", map[string]any{"activities": []any{
			map[string]any{"activity_id": "new", "partner_id": "p1", "flavor": "logged_in"},
			map[string]any{"activity_id": "late", "partner_id": "p1", "flavor": "logged_in", "occurred_at": "2026-10-01T00:00:00Z"},
		}})
		tok := r.json(t)["consistency_token"].(string)
		_, _ = h.feed("?limit=1", tok)
		if err := h.app.WaitCaughtUp(context.Background()); err != nil {
			t.Fatal(err)
		}
		ids2, _ := h.feed("?limit=2&cursor="+p1["next_cursor"].(string), "")
		if strings.Join(ids1, ",") != "a3,a2" || strings.Join(ids2, ",") != "a1,late" {
			t.Fatalf("pages %v then %v", ids1, ids2)
		}
		// The partner's history with its activity, in time order.
		r = h.do("GET", "/partners/p1/history?include=activity", nil)
		if r.status != 200 {
			t.Fatalf("history: %d %s", r.status, r.body)
		}
		var hist struct {
			Items []struct {
				Type     string
				Position string
			}
		}
		_ = json.Unmarshal(r.body, &hist)
		var types []string
		for _, it := range hist.Items {
			types = append(types, it.Type)
		}
		if got := strings.Join(types, ","); got != "partner.created,activity.recorded,activity.recorded,activity.recorded,activity.recorded" {
			t.Fatalf("history types %s", got)
		}
		if r := h.do("GET", "/partners/p1/history", nil); strings.Contains(string(r.body), "activity.recorded") {
			t.Fatal("history without include shows activity")
		}
		for _, q := range []string{"include=", "include=bogus", "include=activity&include=bogus"} {
			if r := h.do("GET", "/partners/p1/history?"+q, nil); r.status != 422 || !strings.Contains(string(r.body), `"include"`) {
				t.Errorf("%s: %d %s, want 422 on include", q, r.status, r.body)
			}
		}
		// With a filter, total counts the matching events of both streams,
		// and every entry says when it took effect.
		for q, want := range map[string]float64{"": 5, "&type=activity.recorded": 4, "&type=partner.created": 1} {
			page := h.expect(200, "GET", "/partners/p1/history?include=activity"+q, nil).json(t)
			if page["total"] != want {
				t.Errorf("include=activity%s: total %v, want %v", q, page["total"], want)
			}
			for _, it := range page["items"].([]any) {
				if it.(map[string]any)["occurred_at"] == nil {
					t.Errorf("include=activity%s: entry without occurred_at: %v", q, it)
				}
			}
		}
		// An activity took effect when the partner did it, not when it was
		// recorded: a window around the late one's occurred_at finds it.
		page = h.expect(200, "GET", "/partners/p1/history?include=activity&since=2026-10-01T00:00:00Z&until=2026-10-01T00:00:01Z", nil).json(t)
		items := page["items"].([]any)
		if page["total"] != float64(1) || len(items) != 1 || items[0].(map[string]any)["occurred_at"] != "2026-10-01T00:00:00Z" ||
			items[0].(map[string]any)["data"].(map[string]any)["activity_id"] != "late" {
			t.Fatalf("history of 2026-10-01: %s", h.do("GET", "/partners/p1/history?include=activity&since=2026-10-01T00:00:00Z&until=2026-10-01T00:00:01Z", nil).body)
		}
	})
}

// sse reads one Server-Sent Events stream.
type sse struct {
	resp *http.Response
	rd   *bufio.Reader
}

type sseEvent struct{ id, event, data string }

func (h *harness) stream(ctx context.Context, query string, headers ...string) (*sse, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", h.base+"/activities/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+h.key)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := sseClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{resp: resp, rd: bufio.NewReader(resp.Body)}, nil
}

var sseClient = &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 2000}}

func (s *sse) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.event != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

func (s *sse) close() { s.resp.Body.Close() }

func activityID(t *testing.T, ev sseEvent) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	return m["activity_id"].(string)
}

func TestActivityStreamFiltersAndResumes(t *testing.T) {
	backends(t, dbActivityStreams, func(t *testing.T, h *harness) {
		h.mustPartner("p1")
		h.mustPartner("p2")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		all, err := h.stream(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		defer all.close()
		onlyP2, err := h.stream(ctx, "?partner_id=p2&flavor=logged_in")
		if err != nil {
			t.Fatal(err)
		}
		defer onlyP2.close()
		post := func(ids ...string) {
			var items []any
			for i, id := range ids {
				p := []string{"p1", "p2"}[i%2]
				items = append(items, map[string]any{"activity_id": id, "partner_id": p, "flavor": "logged_in"})
			}
			if r := h.do("POST", "/activities", map[string]any{"activities": items}); r.status != 202 {
				t.Fatalf("post: %d %s", r.status, r.body)
			}
		}
		post("s1", "s2", "s3", "s4")
		got := map[string]bool{}
		var lastID string
		for len(got) < 4 {
			ev, err := all.next()
			if err != nil {
				t.Fatal(err)
			}
			got[activityID(t, ev)] = true
			lastID = ev.id
		}
		ev, err := onlyP2.next()
		if err != nil || activityID(t, ev) != "s2" {
			t.Fatalf("filtered stream: %v %v", ev, err)
		}
		if ev, err = onlyP2.next(); err != nil || activityID(t, ev) != "s4" {
			t.Fatalf("filtered stream: %v %v", ev, err)
		}
		// Disconnect, miss some, resume with Last-Event-ID: exactly the missed ones.
		all.close()
		post("s5", "s6", "s7")
		ev, _ = onlyP2.next() // s6 is projected once onlyP2 sees it
		if activityID(t, ev) != "s6" {
			t.Fatalf("filtered stream: %v", ev)
		}
		resumed, err := h.stream(ctx, "", "Last-Event-ID", lastID)
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.close()
		post("s8")
		var order []string
		for len(order) < 4 {
			ev, err := resumed.next()
			if err != nil {
				t.Fatal(err)
			}
			order = append(order, activityID(t, ev))
		}
		// Order is projection order (batches of different partners may be
		// applied out of log order); what counts is none missed, none repeated.
		sort.Strings(order)
		if strings.Join(order, ",") != "s5,s6,s7,s8" {
			t.Fatalf("resumed stream: %v", order)
		}
		if r := h.do("GET", "/activities/stream", nil, "Last-Event-ID", "nonsense"); r.status != 400 {
			t.Fatalf("bad Last-Event-ID: %d", r.status)
		}
		// An ID newer than the log's newest was never one of its IDs: the
		// stream says so and goes on from now, instead of skipping every
		// activity until that moment.
		future, err := h.stream(ctx, "", "Last-Event-ID", "9999999999999-0")
		if err != nil {
			t.Fatal(err)
		}
		defer future.close()
		if ev, err := future.next(); err != nil || ev.event != "reset" || !strings.Contains(ev.data, "newer than") {
			t.Fatalf("future Last-Event-ID: %+v %v, want a reset", ev, err)
		}
		post("s9")
		if ev, err := future.next(); err != nil || ev.event != "activity" || activityID(t, ev) != "s9" {
			t.Fatalf("after the reset: %+v %v, want s9", ev, err)
		}
	})
}

const dbActivityMicros = 37

// The feed orders and bounds by occurred_at to the microsecond: within
// one millisecond, the later activity comes first whatever its ID, and
// since/until split the millisecond.
func TestActivityFeedWithinAMillisecond(t *testing.T) {
	backendsWith(t, dbActivityMicros, func(c *app.Config) { c.ActivityMaxAge = 0 }, func(t *testing.T, h *harness) {
		h.mustPartner("p1")
		r := h.do("POST", "/activities", map[string]any{"activities": []any{
			map[string]any{"activity_id": "zzz-early", "partner_id": "p1", "flavor": "logged_in", "occurred_at": "2026-12-06T12:00:00.0001Z"},
			map[string]any{"activity_id": "aaa-late", "partner_id": "p1", "flavor": "logged_in", "occurred_at": "2026-12-06T12:00:00.0009Z"},
			map[string]any{"activity_id": "mmm-mid", "partner_id": "p1", "flavor": "logged_in", "occurred_at": "2026-12-06T12:00:00.000500Z"},
		}})
		if r.status != 202 {
			t.Fatalf("batch: %d %s", r.status, r.body)
		}
		tok := r.json(t)["consistency_token"].(string)
		for query, want := range map[string]string{
			"":                                   "aaa-late,mmm-mid,zzz-early",
			"?since=2026-12-06T12:00:00.0005Z":   "aaa-late,mmm-mid",
			"?until=2026-12-06T12:00:00.0005Z":   "zzz-early",
			"?since=2026-12-06T12:00:00.000101Z": "aaa-late,mmm-mid",
			"?since=2026-12-06T12:00:00.0001Z&until=2026-12-06T12:00:00.000501Z": "mmm-mid,zzz-early",
		} {
			ids, page := h.feed(query, tok)
			if strings.Join(ids, ",") != want || page["total"] != float64(len(ids)) {
				t.Errorf("GET /activities%s: %v (total %v), want %s", query, ids, page["total"], want)
			}
		}
		// Paging one by one walks the same order.
		var walked []string
		cursor := ""
		for range 5 {
			ids, page := h.feed("?limit=1"+cursor, tok)
			walked = append(walked, ids...)
			next, _ := page["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = "&cursor=" + next
		}
		if strings.Join(walked, ",") != "aaa-late,mmm-mid,zzz-early" {
			t.Fatalf("paged: %v", walked)
		}
	})
}

const dbActivityStreamRestart = 38

// Across a restart, a Last-Event-ID resumes exactly where the log kept
// its entries (a real Redis), and where it was rebuilt with new IDs (the
// embedded Redis) the stream says it cannot, instead of replaying the
// whole log again: a "reset" event, then new activities only.
func TestActivityStreamResumeAcrossRestart(t *testing.T) {
	configs(t, dbActivityStreamRestart, func(t *testing.T, cfg app.Config) {
		h := start(t, cfg)
		h.mustPartner("p1")
		post := func(ids ...string) {
			t.Helper()
			var items []any
			for _, id := range ids {
				items = append(items, map[string]any{"activity_id": id, "partner_id": "p1", "flavor": "logged_in"})
			}
			if r := h.do("POST", "/activities", map[string]any{"activities": items}); r.status != 202 {
				t.Fatalf("post: %d %s", r.status, r.body)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := h.stream(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		post("s1", "s2", "s3")
		var lastID string
		for range 3 {
			ev, err := s.next()
			if err != nil {
				t.Fatal(err)
			}
			lastID = ev.id
		}
		s.close()
		post("s4") // missed
		if err := h.app.WaitCaughtUp(ctx); err != nil {
			t.Fatal(err)
		}
		h.stop()

		h = start(t, cfg)
		resumed, err := h.stream(ctx, "", "Last-Event-ID", lastID)
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.close()
		post("s5")
		var got []string
		for len(got) < 2 {
			ev, err := resumed.next()
			if err != nil {
				t.Fatal(err)
			}
			if ev.event == "reset" {
				got = append(got, "reset")
				continue
			}
			got = append(got, activityID(t, ev))
		}
		want := "s4,s5"
		if cfg.RedisURL == "" {
			want = "reset,s5"
		}
		if strings.Join(got, ",") != want {
			t.Fatalf("resumed after the restart: %v, want %s", got, want)
		}
	})
}
