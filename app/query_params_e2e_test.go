package app_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
)

// badParam checks a 400 problem+json whose detail names want.
func (h *harness) badParam(r response, want string) {
	h.t.Helper()
	if r.status != 400 || r.header.Get("Content-Type") != "application/problem+json" {
		h.t.Fatalf("status %d %s, want 400 problem+json: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if d, _ := r.json(h.t)["detail"].(string); !strings.Contains(d, want) {
		h.t.Fatalf("detail %q does not name %q", d, want)
	}
}

// Values with line breaks, commas and quotes leave GET /partners.csv byte
// for byte (inside quotes, records ending with CRLF). Imported again, a
// value with LF line breaks is unchanged; one with CRLF comes back with LF
// (the import reads a quoted CRLF as a line break, like encoding/csv, so
// that files written with CRLF throughout import with LF).
func TestPartnerExportKeepsLineBreaks(t *testing.T) {
	h := start(t, config(t, ""))
	names := map[string]string{
		"lb1": "theta\nNewline",
		"lb2": "crlf\r\nName",
		"lb3": "Comma, \"Quoted\"\nand\r\nmore",
	}
	for _, id := range []string{"lb1", "lb2", "lb3"} {
		h.mustCreate("/partners", map[string]any{"partner_id": id, "name": names[id], "relationship_type": "direct"})
	}
	h.caughtUp()
	exp := h.do("GET", "/partners.csv?columns=partner_id,name,relationship_type&sort=partner_id", nil)
	if exp.status != 200 {
		t.Fatalf("export: %d %s", exp.status, exp.body)
	}
	want := "partner_id,name,relationship_type\r\n" +
		"lb1,\"theta\nNewline\",direct\r\n" +
		"lb2,\"crlf\r\nName\",direct\r\n" +
		"lb3,\"Comma, \"\"Quoted\"\"\nand\r\nmore\",direct\r\n"
	if string(exp.body) != want {
		t.Fatalf("export body\n%q\nwant\n%q", exp.body, want)
	}
	recs, err := csv.NewReader(bytes.NewReader(exp.body)).ReadAll()
	if err != nil || len(recs) != 4 {
		t.Fatalf("parse: %q %v", recs, err)
	}
	for _, rec := range recs[1:] {
		// encoding/csv's reader turns a quoted CRLF into LF; the bytes above are exact.
		if rec[1] != strings.ReplaceAll(names[rec[0]], "\r\n", "\n") {
			t.Errorf("%s read back as %q, want %q", rec[0], rec[1], names[rec[0]])
		}
	}

	// Imported again: every value unchanged, CRLF ones too (they were read
	// as LF, so re-uploading an export changed them).
	head := h.head()
	r, rows := h.importCSV(string(exp.body))
	if r.status != 200 || len(rows) != 3 {
		t.Fatalf("re-import: %d %s", r.status, r.body)
	}
	for i, id := range []string{"lb1", "lb2", "lb3"} {
		wantStatus(t, rows, i+2, "unchanged")
		if got := h.partner(id)["name"]; got != names[id] {
			t.Errorf("re-imported %s: name %q, want %q", id, got, names[id])
		}
	}
	if h.head() != head {
		t.Fatal("re-importing the export appended events")
	}
	// Imported as new partners: the same names, byte for byte.
	r, rows = h.importCSV(strings.ReplaceAll(string(exp.body), "\r\nlb", "\r\nim")) // IDs lb1-3 → im1-3
	if r.status != 200 || len(rows) != 3 {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	for i, id := range []string{"lb1", "lb2", "lb3"} {
		wantStatus(t, rows, i+2, "ok")
		if got, want := h.partner("im" + id[2:])["name"], names[id]; got != want {
			t.Errorf("imported %s: name %q, want %q", "im"+id[2:], got, want)
		}
	}
	// The whole export again: unchanged, appending nothing.
	exp = h.do("GET", "/partners.csv?columns=partner_id,name,relationship_type&sort=partner_id", nil)
	head = h.head()
	if r, rows = h.importCSV(string(exp.body)); r.status != 200 || len(rows) != 6 {
		t.Fatalf("re-import: %d %s", r.status, r.body)
	}
	for row := 2; row <= 7; row++ {
		wantStatus(t, rows, row, "unchanged")
	}
	if h.head() != head {
		t.Fatal("re-importing the export appended events")
	}
}

// The default-sort partner list, segment members and a preview page with
// opaque cursors: one this server did not issue (garbage, or a bare
// partner ID) is 400 naming cursor, and next_cursor walks every match once.
func TestDefaultSortCursorsAreValidated(t *testing.T) {
	h := start(t, config(t, ""))
	var ids []string
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("cur-%d", i)
		ids = append(ids, id)
		h.mustCreate("/partners", map[string]any{"partner_id": id, "name": id, "relationship_type": "direct", "country": "DE"})
	}
	conds := rows(row("country", "eq", "DE"))
	h.mustCreate("/segments", map[string]any{"id": "de", "name": "DE", "conditions": conds})
	h.caughtUp()

	for _, cur := range []string{"garbage", "cur-2", "Z2FyYmFnZQ", "%00"} {
		h.badParam(h.do("GET", "/partners?cursor="+cur, nil), "cursor")
		h.badParam(h.do("GET", "/partners?limit=2&country=DE&cursor="+cur, nil), "cursor")
		h.badParam(h.do("POST", "/segments/preview?cursor="+cur, map[string]any{"conditions": conds}), "cursor")
		h.badParam(h.do("GET", "/segments/de/members?cursor="+cur, nil), "cursor")
	}
	// A cursor of another sort is refused too.
	first := h.expect(200, "GET", "/partners?limit=2", nil).json(t)
	h.badParam(h.do("GET", "/partners?limit=2&sort=-partner_id&cursor="+first["next_cursor"].(string), nil), "cursor")

	// Walking the pages returns every match exactly once.
	var listed []string
	for cursor := ""; ; {
		page := h.expect(200, "GET", "/partners?limit=2"+cursor, nil).json(t)
		for _, it := range page["items"].([]any) {
			listed = append(listed, it.(map[string]any)["partner_id"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = "&cursor=" + next
	}
	if !slices.Equal(listed, ids) {
		t.Errorf("list pages = %v, want %v", listed, ids)
	}
	if got := h.previewIDs(conds); !slices.Equal(got, ids) {
		t.Errorf("preview pages = %v, want %v", got, ids)
	}
	if got := h.memberIDs("de"); !slices.Equal(got, ids) {
		t.Errorf("member pages = %v, want %v", got, ids)
	}
}

// Segment members and a preview know limit and cursor only, like the
// other lists.
func TestSegmentQueriesRefuseUnknownParameters(t *testing.T) {
	h := start(t, config(t, ""))
	conds := rows(row("country", "eq", "DE"))
	h.mustCreate("/segments", map[string]any{"id": "de", "name": "DE", "conditions": conds})
	h.caughtUp()
	for _, q := range []string{"foo=1", "limit=2&foo=1", "sort=name", "q=x"} {
		h.badParam(h.do("POST", "/segments/preview?"+q, map[string]any{"conditions": conds}), "unknown parameter")
		h.badParam(h.do("GET", "/segments/de/members?"+q, nil), "unknown parameter")
	}
	h.expect(200, "POST", "/segments/preview?limit=2", map[string]any{"conditions": conds})
	h.expect(200, "GET", "/segments/de/members?limit=2", nil)
}

// Every endpoint refuses a query parameter its operation in openapi.json
// does not declare: a misspelt as_of_version must not answer the current
// state, nor a misspelt limit the default page.
func TestEndpointsRefuseUndeclaredParameters(t *testing.T) {
	h := start(t, config(t, ""))
	h.mustCreate("/partners", map[string]any{"partner_id": "p1", "name": "One", "relationship_type": "direct"})
	h.mustCreate("/groups", map[string]any{"id": "g1", "name": "G"})
	h.expect(200, "PATCH", "/partners/p1", map[string]any{"name": "Two"})
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/partners/p1?as_of_versoin=1", "'as_of_versoin': this endpoint takes only as_of, as_of_version"},
		{"GET", "/groups?limt=1", "'limt'"},
		{"GET", "/groups/g1?foo=1", "'foo'"},
		{"GET", "/template-terms?sort=name", "'sort'"},
		{"GET", "/connections?q=x", "'q'"},
		{"GET", "/credentials?limit=1&x=1", "'x'"},
		{"GET", "/segments?limit=5&cursr=a", "'cursr'"},
		{"GET", "/partners/p1/notes?type=x", "'type'"},
		{"GET", "/partners/p1/history?sinse=2026-01-01T00:00:00Z", "'sinse'"},
		{"GET", "/activities?partner=p1", "'partner'"},
		{"PATCH", "/partners/p1?dry_run=1", "takes no query parameters"},
	} {
		var body any
		if c.method == "PATCH" {
			body = map[string]any{"name": "Three"}
		}
		h.badParam(h.do(c.method, c.path, body), c.want)
	}
	if v := h.expect(200, "GET", "/partners/p1?as_of_version=1", nil).json(t); v["name"] != "One" {
		t.Fatalf("as_of_version=1: %v", v)
	}
	if v := h.expect(200, "GET", "/partners/p1", nil).json(t); v["name"] != "Two" || v["version"] != 2.0 {
		t.Fatalf("the refused PATCH changed the partner: %v", v)
	}
	h.expect(200, "GET", "/groups?limit=1", nil)
	h.expect(200, "GET", "/partners/p1/history?type=partner.profile_updated&limit=1", nil)
}

// POST /segments/preview (and segment members) honour X-Consistency-Token:
// a garbage token is 400, a partner's token shows that partner, a token
// the read model never reaches is 503 with Retry-After.
func TestSegmentPreviewReadsYourWrites(t *testing.T) {
	h := start(t, config(t, ""))
	conds := rows(row("country", "eq", "NL"))
	h.mustCreate("/segments", map[string]any{"id": "nl", "name": "NL", "conditions": conds})
	h.caughtUp()
	body := map[string]any{"conditions": conds}
	h.badParam(h.do("POST", "/segments/preview", body, "X-Consistency-Token", "garbage!"), "X-Consistency-Token")
	h.badParam(h.do("GET", "/segments/nl/members", nil, "X-Consistency-Token", "garbage!"), "X-Consistency-Token")

	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("ryw-%02d", i)
		tok := h.expect(201, "POST", "/partners", map[string]any{"partner_id": id, "name": id, "relationship_type": "direct", "country": "NL"}).
			header.Get("X-Consistency-Token")
		page := h.expect(200, "POST", "/segments/preview?limit=1000", body, "X-Consistency-Token", tok).json(t)
		if !slices.Contains(pageIDs(page), id) || page["total"] != float64(i+1) {
			t.Fatalf("preview with the token of %s: %v", id, page)
		}
		page = h.expect(200, "GET", "/segments/nl/members?limit=1000", nil, "X-Consistency-Token", tok).json(t)
		if !slices.Contains(pageIDs(page), id) {
			t.Fatalf("members with the token of %s: %v", id, page)
		}
	}

	// A token of a write the log never had is refused at once; one the
	// read model has not applied (its guard is gone here, as if it lagged)
	// is a 503 with Retry-After once the wait limit passes.
	ahead := queries.ConsistencyToken(domain.PartnerStream("acme", "ryw-00"), 99)
	h.badParam(h.do("POST", "/segments/preview", body, "X-Consistency-Token", ahead), "X-Consistency-Token")
	stream := domain.PartnerStream("acme", "ryw-00")
	guard := projections.NewKeyspace("segments", h.app.Generation("segments"), "acme").Guard()
	if err := h.app.Redis.HDel(t.Context(), guard, stream).Err(); err != nil {
		t.Fatal(err)
	}
	r := h.do("POST", "/segments/preview", body, "X-Consistency-Token", queries.ConsistencyToken(stream, 1))
	if r.status != 503 || r.header.Get("Retry-After") == "" || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("token never reached: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
}

func pageIDs(page map[string]any) []string {
	var out []string
	for _, it := range page["items"].([]any) {
		out = append(out, it.(map[string]any)["partner_id"].(string))
	}
	return out
}

// List cells export with ';' and '\' inside an item escaped, and import
// back unchanged; list items are kept trimmed, as an import reads them.
func TestPartnerExportImportsBackListItems(t *testing.T) {
	h := start(t, config(t, ""))
	created := h.expect(201, "POST", "/partners", map[string]any{"partner_id": "w1", "name": "W", "relationship_type": "direct",
		"media_properties": []string{"https://x.example/a;b", `C:\media\feed`, "plain"}, "contact_names": []string{"Doe; John"},
		"categories": []string{" padded ", "  ", "x"}}).json(t)
	if fmt.Sprint(created["categories"]) != "[padded x]" {
		t.Fatalf("categories kept as %v, want trimmed without the empty item", created["categories"])
	}
	h.caughtUp()
	exp := h.expect(200, "GET", "/partners.csv?q=w1&columns=partner_id,name,relationship_type,media_properties,contact_names,categories", nil)
	if want := `w1,W,direct,https://x.example/a\;b;C:\\media\\feed;plain,Doe\; John,padded;x`; !strings.Contains(string(exp.body), want) {
		t.Fatalf("export\n%s\nwant the row %s", exp.body, want)
	}
	_, rows := h.importCSV(string(exp.body))
	wantStatus(t, rows, 2, "unchanged")
	p := h.partner("w1")
	if fmt.Sprint(p["media_properties"], p["contact_names"]) != `[https://x.example/a;b C:\media\feed plain] [Doe; John]` {
		t.Fatalf("after the import: %v %v", p["media_properties"], p["contact_names"])
	}
	// A backslash before anything else is itself.
	_, rows = h.importCSV("partner_id,categories\r\nw1,a\\b;c\r\n")
	wantStatus(t, rows, 2, "ok")
	if p := h.partner("w1"); fmt.Sprint(p["categories"]) != `[a\b c]` {
		t.Fatalf("categories a\\b;c: %v", p["categories"])
	}
}
