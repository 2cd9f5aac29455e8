package app_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/internal/testenv"
)

// History and time-travel tests use databases 28-30.
const dbHistory = 28

func historyTypes(t *testing.T, page map[string]any) []string {
	t.Helper()
	var out []string
	for _, it := range page["items"].([]any) {
		out = append(out, it.(map[string]any)["type"].(string))
	}
	return out
}

// Partner history filtered by type (repeatable) and by a time range, paged
// with the filter kept; bad filters are 4xx naming the parameter.
func TestHistoryFilters(t *testing.T) {
	backends(t, dbHistory, func(t *testing.T, h *harness) {
		h.expect(201, "POST", "/partners", map[string]any{"partner_id": "f", "name": "F", "relationship_type": "direct"})
		for i := 0; i < 4; i++ {
			h.expect(200, "PATCH", "/partners/f", map[string]any{"name": fmt.Sprintf("F%d", i)})
		}
		time.Sleep(5 * time.Millisecond)
		mid := time.Now().UTC()
		time.Sleep(5 * time.Millisecond)
		h.expect(200, "PUT", "/partners/f/assigned-to", map[string]any{"user": "ann"})
		h.expect(200, "PATCH", "/partners/f", map[string]any{"name": "G"})

		all := h.expect(200, "GET", "/partners/f/history", nil).json(t)
		if all["total"] != 7.0 {
			t.Fatalf("total %v, want 7", all["total"])
		}
		upd := h.expect(200, "GET", "/partners/f/history?type=partner.profile_updated&limit=2", nil).json(t)
		if got := historyTypes(t, upd); upd["total"] != 5.0 || len(got) != 2 || got[0] != "partner.profile_updated" || upd["next_cursor"] == nil {
			t.Fatalf("filtered page 1: %v", upd)
		}
		var versions []float64
		cursor := ""
		for page := 0; page < 5; page++ {
			p := h.expect(200, "GET", "/partners/f/history?type=partner.profile_updated&limit=2"+cursor, nil).json(t)
			for _, it := range p["items"].([]any) {
				versions = append(versions, it.(map[string]any)["version"].(float64))
			}
			if p["next_cursor"] == nil {
				break
			}
			cursor = "&cursor=" + p["next_cursor"].(string)
		}
		if fmt.Sprint(versions) != "[2 3 4 5 7]" {
			t.Fatalf("paged profile updates at versions %v, want [2 3 4 5 7]", versions)
		}
		two := h.expect(200, "GET", "/partners/f/history?type=partner.created&type=partner.assigned", nil).json(t)
		if got := historyTypes(t, two); fmt.Sprint(got) != "[partner.created partner.assigned]" || two["total"] != 2.0 {
			t.Fatalf("two types: %v", two)
		}
		q := url.QueryEscape(mid.Format(time.RFC3339Nano))
		after := h.expect(200, "GET", "/partners/f/history?since="+q, nil).json(t)
		if got := historyTypes(t, after); fmt.Sprint(got) != "[partner.assigned partner.profile_updated]" {
			t.Fatalf("since mid: %v", got)
		}
		before := h.expect(200, "GET", "/partners/f/history?until="+q, nil).json(t)
		if before["total"] != 5.0 {
			t.Fatalf("until mid: %v", before)
		}
		none := h.expect(200, "GET", "/partners/f/history?type=group.created", nil).json(t)
		if none["total"] != 0.0 || len(none["items"].([]any)) != 0 {
			t.Fatalf("a filter matching nothing: %v", none)
		}
		for path, want := range map[string]int{
			"/partners/f/history?type=nope":                             422,
			"/partners/f/history?since=yesterday":                       400,
			"/partners/f/history?until=2020-01-01T00:00:00Z&since=" + q: 422,
			"/partners/nobody/history?type=partner.created":             404,
		} {
			r := h.do("GET", path, nil)
			if r.status != want || !strings.Contains(r.header.Get("Content-Type"), "problem+json") {
				t.Errorf("%s: %d %s, want %d", path, r.status, r.body, want)
			}
		}
		if r := h.do("GET", "/partners/f/history?type=nope", nil); !strings.Contains(string(r.body), `"field":"type"`) {
			t.Errorf("unknown type does not name the field: %s", r.body)
		}
	})
}

// Groups and template terms have histories and past states too, folded
// from their own streams.
func TestCatalogHistoryAndAsOf(t *testing.T) {
	backends(t, dbHistory+1, func(t *testing.T, h *harness) {
		h.expect(201, "POST", "/groups", map[string]any{"id": "vip", "name": "VIP"}, "X-Actor", "jane", "X-Request-ID", "req-g1")
		h.expect(200, "PATCH", "/groups/vip", map[string]any{"name": "Very Important"})
		time.Sleep(5 * time.Millisecond)
		beforeDelete := time.Now().UTC()
		h.expect(204, "DELETE", "/groups/vip", nil)
		g := h.expect(200, "GET", "/groups/vip/history", nil).json(t)
		if got := historyTypes(t, g); fmt.Sprint(got) != "[group.created group.renamed group.deleted]" || g["total"] != 3.0 {
			t.Fatalf("group history %v", g)
		}
		first := g["items"].([]any)[0].(map[string]any)
		if !strings.Contains(first["actor"].(string), "jane") || first["correlation_id"] != "req-g1" || first["version"] != 1.0 {
			t.Fatalf("group.created entry %v", first)
		}
		if r := h.expect(200, "GET", "/groups/vip/history?type=group.renamed", nil).json(t); r["total"] != 1.0 {
			t.Fatalf("filtered group history %v", r)
		}
		h.expect(404, "GET", "/groups/vip", nil) // deleted now
		if v := h.expect(200, "GET", "/groups/vip?as_of_version=1", nil).json(t); v["name"] != "VIP" || v["version"] != 1.0 {
			t.Fatalf("group at version 1: %v", v)
		}
		if v := h.expect(200, "GET", "/groups/vip?as_of="+url.QueryEscape(beforeDelete.Format(time.RFC3339Nano)), nil).json(t); v["name"] != "Very Important" {
			t.Fatalf("group before its deletion: %v", v)
		}
		h.expect(404, "GET", "/groups/vip?as_of_version=3", nil) // deleted at 3
		h.expect(404, "GET", "/groups/vip?as_of_version=9", nil) // never had 9
		h.expect(404, "GET", "/groups/nosuch/history", nil)

		h.expect(201, "POST", "/template-terms", map[string]any{"id": "gold", "name": "Gold"})
		h.expect(200, "PATCH", "/template-terms/gold", map[string]any{"name": "Gold+"})
		h.expect(200, "POST", "/template-terms/gold/archive", nil)
		tt := h.expect(200, "GET", "/template-terms/gold/history", nil).json(t)
		if got := historyTypes(t, tt); fmt.Sprint(got) != "[template_term.created template_term.updated template_term.archived]" {
			t.Fatalf("template term history %v", got)
		}
		if v := h.expect(200, "GET", "/template-terms/gold?as_of_version=2", nil).json(t); v["name"] != "Gold+" || v["archived"] != false {
			t.Fatalf("term at version 2: %v", v)
		}
		if v := h.expect(200, "GET", "/template-terms/gold", nil).json(t); v["archived"] != true {
			t.Fatalf("term now: %v", v)
		}

		// Connections have a history by one line in httpapi/history.go;
		// credentials too, without the password hashes their events hold.
		h.expect(201, "POST", "/credentials", map[string]any{"id": "login", "name": "Login", "type": "password"})
		h.expect(201, "POST", "/connections", map[string]any{"id": "mail", "name": "Mail", "direction": "upload", "data_type": "audiences",
			"method": "email", "methodology": "push", "pattern": "audiences_*.csv", "credential_id": "login"})
		h.expect(200, "PATCH", "/connections/mail", map[string]any{"name": "Mail 2"})
		ch := h.expect(200, "GET", "/connections/mail/history", nil)
		if got := historyTypes(t, ch.json(t)); fmt.Sprint(got) != "[connection.created connection.updated]" || strings.Contains(string(ch.body), "argon2") {
			t.Fatalf("connection history %s", ch.body)
		}
		cr := h.expect(200, "GET", "/credentials/login/history", nil)
		if got := historyTypes(t, cr.json(t)); fmt.Sprint(got) != "[credential.created credential.connection_attached]" || strings.Contains(string(cr.body), "argon2") {
			t.Fatalf("credential history %s", cr.body)
		}
	})
}

// ?as_of_version=N folds the first N events; bad values are 4xx.
func TestPartnerAsOfVersion(t *testing.T) {
	backends(t, dbHistory+2, func(t *testing.T, h *harness) {
		h.expect(201, "POST", "/partners", map[string]any{"partner_id": "v", "name": "One", "relationship_type": "direct", "country": "DE"})
		h.expect(200, "PATCH", "/partners/v", map[string]any{"name": "Two"})
		h.expect(200, "PATCH", "/partners/v", map[string]any{"name": "Three", "country": "FR"})
		for n, want := range map[int]string{1: "One DE", 2: "Two DE", 3: "Three FR"} {
			v := h.expect(200, "GET", fmt.Sprintf("/partners/v?as_of_version=%d", n), nil).json(t)
			if got := fmt.Sprint(v["name"], " ", v["country"]); got != want || v["version"] != float64(n) {
				t.Errorf("version %d: %s (version %v), want %s", n, got, v["version"], want)
			}
		}
		// With as_of too, the earlier of the two states.
		if v := h.expect(200, "GET", "/partners/v?as_of_version=2&as_of=2999-01-01T00:00:00Z", nil).json(t); v["name"] != "Two" {
			t.Fatalf("version 2 as of 2999: %v", v)
		}
		h.expect(404, "GET", "/partners/v?as_of_version=3&as_of=2000-01-01T00:00:00Z", nil)
		// The first instant RFC 3339 can write is a time like any other.
		h.expect(404, "GET", "/partners/v?as_of=0001-01-01T00:00:00Z", nil)
		h.expect(404, "GET", "/partners/v?as_of="+url.QueryEscape("0001-01-01T01:00:00+01:00"), nil)
		if page := h.expect(200, "GET", "/partners/v/history?until=0001-01-01T00:00:00Z", nil).json(t); page["total"] != 0.0 || len(page["items"].([]any)) != 0 {
			t.Fatalf("history until 0001-01-01: %v", page)
		}
		if page := h.expect(200, "GET", "/partners/v/history?since=0001-01-01T00:00:00Z", nil).json(t); page["total"] == 0.0 {
			t.Fatalf("history since 0001-01-01: %v", page)
		}
		for path, want := range map[string]int{
			"/partners/v?as_of_version=0":   422,
			"/partners/v?as_of_version=-1":  400,
			"/partners/v?as_of_version=two": 400,
			"/partners/v?as_of_version=4":   404,
			"/partners/x?as_of_version=1":   404,
		} {
			if r := h.do("GET", path, nil); r.status != want {
				t.Errorf("%s: %d %s, want %d", path, r.status, r.body, want)
			}
		}
	})
}

// as_of=<the updated_at a command answered> shows the version that command
// made, and a nanosecond earlier the one before, for every kind of change
// (updated_at follows all of them, not only the profile): as_of folds by
// each event's metadata occurred_at, the time the command wrote into it,
// not by the later recording.
func TestPartnerAsOfItsOwnUpdatedAt(t *testing.T) {
	backends(t, dbHistory+2, func(t *testing.T, h *harness) {
		h.mustCreate("/groups", map[string]any{"id": "gw", "name": "GW"})
		answers := []map[string]any{
			h.expect(201, "POST", "/partners", map[string]any{"partner_id": "w", "name": "One", "relationship_type": "direct"}).json(t),
			h.expect(200, "PATCH", "/partners/w", map[string]any{"name": "Two"}).json(t),
			h.expect(200, "PUT", "/partners/w/groups", map[string]any{"groups": []string{"gw"}}).json(t),
			h.expect(200, "PUT", "/partners/w/assigned-to", map[string]any{"user": "ann"}).json(t),
		}
		asOf := func(at time.Time) response {
			return h.do("GET", "/partners/w?as_of="+url.QueryEscape(at.Format(time.RFC3339Nano)), nil)
		}
		for i, a := range answers {
			at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(a["updated_at"]))
			if err != nil {
				t.Fatalf("updated_at of %v: %v", a, err)
			}
			if i > 0 {
				prev, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(answers[i-1]["updated_at"]))
				if !at.After(prev) {
					t.Fatalf("answer %d: updated_at %s did not move on from %s", i+1, at.Format(time.RFC3339Nano), prev.Format(time.RFC3339Nano))
				}
			}
			if v := asOf(at).json(t); v["version"] != a["version"] || fmt.Sprint(v["groups"], v["assigned_to"]) != fmt.Sprint(a["groups"], a["assigned_to"]) {
				t.Fatalf("as of answer %d's updated_at %s: %v, want %v", i+1, at.Format(time.RFC3339Nano), v, a)
			}
			before := asOf(at.Add(-time.Nanosecond))
			if i == 0 {
				if before.status != 404 {
					t.Fatalf("a nanosecond before the creation: %d %s", before.status, before.body)
				}
			} else if v := before.json(t); v["version"] != answers[i-1]["version"] {
				t.Fatalf("a nanosecond before answer %d: version %v, want %v", i+1, v["version"], answers[i-1]["version"])
			}
		}
		hist := h.expect(200, "GET", "/partners/w/history", nil).json(t)
		for _, it := range hist["items"].([]any) {
			e := it.(map[string]any)
			occurred, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(e["occurred_at"]))
			recorded, err2 := time.Parse(time.RFC3339Nano, fmt.Sprint(e["recorded_at"]))
			if err1 != nil || err2 != nil || recorded.Before(occurred) {
				t.Fatalf("history entry %v: occurred_at must be at or before recorded_at", e)
			}
		}
	})
}

// /metrics exports each projection's head, lag and rebuild progress, and
// GET /v1/projections the same figures.
func TestProjectionProgressMetrics(t *testing.T) {
	h := start(t, config(t, ""))
	for i := 0; i < 10; i++ {
		h.expect(201, "POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("m%d", i), "name": "M", "relationship_type": "direct"})
	}
	h.expect(202, "POST", h.srv.URL+"/v1/projections/partners/rebuild", nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := get(t, h.srv.URL+"/metrics")
		if strings.Contains(body, `partnerd_projection_rebuild_running{projection="partners"} 0`) &&
			strings.Contains(body, `partnerd_projection_rebuild_progress_ratio{projection="partners"} 1`) {
			for _, m := range []string{
				fmt.Sprintf(`partnerd_projection_head_position{projection="partners"} %d`, h.head()),
				`partnerd_projection_lag_events{projection="partners"} 0`,
				`partnerd_projection_lag_seconds{projection="partners"} 0`,
				`partnerd_projection_rebuild_events_applied{projection="partners"} 10`,
				`partnerd_projection_lag_events{projection="catalog"} 0`,
				`partnerd_projection_rebuild_running{projection="catalog"} 0`,
			} {
				if !strings.Contains(body, m) {
					t.Errorf("/metrics lacks %s", m)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished rebuild in /metrics:\n%s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, it := range h.expect(200, "GET", h.srv.URL+"/v1/projections", nil).json(t)["items"].([]any) {
		m := it.(map[string]any)
		if m["name"] != "partners" {
			continue
		}
		rb := m["rebuild"].(map[string]any)
		if m["lag_seconds"] != 0.0 || rb["progress"] != 1.0 || rb["events"] != 10.0 || rb["events_per_second"].(float64) <= 0 {
			t.Fatalf("partners status %v", m)
		}
	}
}

// A partner with a long stream gets a snapshot in the event store, beside
// its stream, and commands and reads on it still see exactly the folded
// state; the snapshot never reaches the log's consumers.
func TestPartnerSnapshotTakenAndUsed(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testPartnerSnapshot(t, config(t, ""), nil) })
	t.Run("kurrentdb", func(t *testing.T) {
		esdbURL, backing := testenv.KurrentDB(t)
		cfg := config(t, "")
		cfg.EventStore = esdbURL
		testPartnerSnapshot(t, cfg, backing)
	})
}

// testPartnerSnapshot runs the snapshot scenario; backing, when set, is the
// store behind the KurrentDB test server.
func testPartnerSnapshot(t *testing.T, cfg app.Config, backing *embedded.Store) {
	h := start(t, cfg)
	h.expect(201, "POST", "/partners", map[string]any{"partner_id": "long", "name": "Long", "relationship_type": "direct"})
	ctx := context.Background()
	for i := 0; i < 520; i++ {
		if _, _, err := h.app.Commands.AddNote.Handle(ctx, "acme", "long", fmt.Sprint("note ", i), commands.Meta{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	// The load of the 501st command folded 500 events: a snapshot at 500;
	// the later loads start from it and fold too few to take another.
	h.expect(200, "PATCH", "/partners/long", map[string]any{"name": "Longer"})
	stream := domain.PartnerStream("acme", "long")
	snaps, ok := h.app.Store.(eventstore.Snapshotter)
	if !ok {
		t.Fatalf("%T keeps no snapshots", h.app.Store)
	}
	raw, err := snaps.ReadSnapshot(ctx, stream)
	if err != nil || !strings.Contains(string(raw), `"version":500,`) {
		t.Fatalf("no snapshot at version 500 in the event store: %v %.200s", err, raw)
	}
	h.expect(200, "PATCH", "/partners/long", map[string]any{"name": "Longest"})
	notes := h.expect(200, "GET", "/partners/long/notes?limit=1000", nil).json(t)
	if notes["total"] != 520.0 {
		t.Fatalf("notes after loads from the snapshot: %v", notes["total"])
	}
	if v := h.expect(200, "GET", "/partners/long?as_of_version=523", nil).json(t); v["name"] != "Longest" || v["version"] != 523.0 {
		t.Fatalf("partner %v", v)
	}
	if backing != nil {
		// KurrentDB: one snapshot event in the stream beside the partner's.
		evs, err := backing.ReadStream(ctx, eventstore.SnapshotStream(stream), 0, eventstore.Forwards, 10)
		if err != nil || len(evs) != 1 {
			t.Fatalf("snapshot stream holds %d events, %v; want 1", len(evs), err)
		}
	}
	// The relay catches up to the head and publishes the log's events only.
	head, err := h.app.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.app.Relay.Position() < head {
		if time.Now().After(deadline) {
			t.Fatalf("relay at %d, head %d", h.app.Relay.Position(), head)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var logEvents uint64
	for after := eventstore.Position(0); ; {
		page, err := h.app.Store.ReadAll(ctx, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, ev := range page {
			if eventstore.IsSnapshotStream(ev.StreamID) {
				t.Fatalf("the log shows a snapshot event of %s", ev.StreamID)
			}
		}
		logEvents += uint64(len(page))
		after = page[len(page)-1].Position
	}
	if got := h.app.Relay.Published(); got != logEvents {
		t.Fatalf("relay published %d messages, the log holds %d events", got, logEvents)
	}
}

// Rebuilds read the whole log and keep the events of their projections'
// topics: no projection takes the topic a snapshot stream would map to, and
// no aggregate stream is named like a snapshot stream.
func TestNoProjectionReadsSnapshotStreams(t *testing.T) {
	stream := domain.PartnerStream("acme", "long")
	for _, s := range []string{eventstore.SnapshotStream(stream), "$$" + eventstore.SnapshotStream(stream)} {
		if !eventstore.IsSnapshotStream(s) {
			t.Fatalf("%s is not recognised as a snapshot stream", s)
		}
		topic := bus.Topic(domain.Category(s))
		for _, p := range app.Projections() {
			if slices.Contains(p.Topics(), topic) {
				t.Fatalf("projection %s reads %s, the topic of snapshot streams", p.Name(), topic)
			}
		}
		if slices.Contains(bus.Topics(), topic) {
			t.Fatalf("%s is a published topic", topic)
		}
	}
	for _, s := range []string{stream, domain.ProgramStream("snapshot"), domain.GroupStream("acme", "snapshot-x"),
		domain.ActivityStream("acme", "x"), domain.SegmentMembersStream("acme", "x"), domain.ConnectionStream("acme", "x"),
		domain.CredentialStream("acme", "x"), domain.TemplateTermStream("acme", "x"), domain.SegmentStream("acme", "x")} {
		if eventstore.IsSnapshotStream(s) {
			t.Fatalf("aggregate stream %s is named like a snapshot stream", s)
		}
	}
}
