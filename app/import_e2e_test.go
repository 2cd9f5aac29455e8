package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis databases of the import and security tests (see redisDB).
const (
	dbImport      = 25
	dbImportLarge = 26
	dbRedisData   = 27
)

type importRow = map[string]any

// importCSV uploads body as text/csv and returns the answer and its rows by row number.
func (h *harness) importCSV(body string, headers ...string) (response, map[int]importRow) {
	h.t.Helper()
	r := h.do("POST", "/partners/import", body, append([]string{"Content-Type", "text/csv"}, headers...)...)
	if r.status != 200 {
		return r, nil
	}
	rows := map[int]importRow{}
	for _, it := range r.json(h.t)["results"].([]any) {
		m := it.(map[string]any)
		rows[int(m["row"].(float64))] = m
	}
	return r, rows
}

func (h *harness) caughtUp() {
	h.t.Helper()
	if err := h.app.WaitCaughtUp(h.t.Context()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) partner(id string) map[string]any {
	h.t.Helper()
	h.caughtUp()
	r := h.do("GET", "/partners/"+id, nil)
	if r.status != 200 {
		h.t.Fatalf("GET partner %s: %d %s", id, r.status, r.body)
	}
	return r.json(h.t)
}

func wantStatus(t *testing.T, rows map[int]importRow, row int, status string) importRow {
	t.Helper()
	r, ok := rows[row]
	if !ok || r["status"] != status {
		t.Fatalf("row %d = %v, want status %s", row, r, status)
	}
	return r
}

// An export imports again unchanged; edited rows change their partners,
// new rows create partners, bad rows fail alone, and RFC 4180 quoting, a
// byte order mark and CRLF line ends are read right.
func TestImportPartnersByCSV(t *testing.T) {
	backends(t, dbImport, func(t *testing.T, h *harness) {
		for _, g := range []string{"vip", "travel"} {
			if r := h.do("POST", "/groups", map[string]any{"id": g, "name": g}); r.status != 201 {
				t.Fatal(r.status, string(r.body))
			}
		}
		for i, p := range []map[string]any{
			{"partner_id": "a", "name": "Alpha, Inc.", "relationship_type": "direct", "country": "DE", "social_reach": 10,
				"media_properties": []string{"https://a.example", "@alpha"}, "custom_fields": map[string]string{"niche": "travel"}, "email": "a@a.example"},
			{"partner_id": "b", "name": `Beta "the" Blog`, "relationship_type": "marketplace", "description": "line one\nline two"},
			{"partner_id": "c", "name": "Gamma", "relationship_type": "direct"},
		} {
			if r := h.do("POST", "/partners", p); r.status != 201 {
				t.Fatalf("partner %d: %d %s", i, r.status, r.body)
			}
		}
		h.do("PUT", "/partners/a/groups", map[string]any{"groups": []string{"vip"}})
		h.do("PUT", "/partners/b/assigned-to", map[string]any{"user": "jane@brand.example"})
		h.caughtUp()

		// 1. Every list column exported, imported again: nothing changes.
		exp := h.do("GET", "/partners.csv?columns=partner_id,name,url,description,country,size,media_properties,social_reach,"+
			"custom_fields,email,relationship_type,groups,assigned_to,prospect_stage,contract_status,relationship_stage,date_joined,version,created_at", nil)
		if exp.status != 200 {
			t.Fatalf("export: %d %s", exp.status, exp.body)
		}
		head := h.head()
		r, rows := h.importCSV(string(exp.body))
		if r.status != 200 || len(rows) != 3 {
			t.Fatalf("re-import of the export: %d %s", r.status, r.body)
		}
		for row := 2; row <= 4; row++ {
			wantStatus(t, rows, row, "unchanged")
		}
		if h.head() != head {
			t.Fatal("re-importing an export appended events")
		}
		ignored := fmt.Sprint(r.json(t)["ignored_columns"])
		if ignored != "[contract_status relationship_stage date_joined created_at]" {
			t.Fatalf("ignored_columns = %s", ignored)
		}

		// 2. Edits, creations, bad rows; BOM, CRLF, quoted commas, quotes and newlines.
		file := "\ufeffpartner_id,name,country,groups,assigned_to,social_reach,description,relationship_type,media_properties\r\n" +
			`a,"Alpha, Ltd.",FR,vip;travel,,42,"said ""hi""` + "\r\n" + `over two lines",direct,https://a.example` + "\r\n" +
			"b,Beta,,,,,,marketplace,\r\n" + // clears country/description, leaves groups empty, unassigns
			"c,Gamma,XX,,,,,direct,\r\n" + // invalid country: this row alone fails
			"new-1,New One,NL,travel,joe,5,,direct,\r\n" + // creates
			",Auto ID,,,,,,marketplace,\r\n" + // creates with an assigned ID
			"c,Gamma,,nosuch,,,,direct,\r\n" + // unknown group: fails, applies nothing
			"d,No Type,,,,,,,\r\n" + // creation without relationship_type
			"a,Alpha,DE\r\n" + // too few cells
			"c,Gamma,,,,notanumber,,direct,\r\n"
		r, rows = h.importCSV(file)
		if r.status != 200 {
			t.Fatalf("import: %d %s", r.status, r.body)
		}
		if len(rows) != 9 {
			t.Fatalf("%d results for 9 rows: %s", len(rows), r.body)
		}
		wantStatus(t, rows, 2, "ok")
		wantStatus(t, rows, 3, "ok")
		if e := wantStatus(t, rows, 4, "error"); e["code"] != 422.0 || !strings.Contains(e["error"].(string), "country") {
			t.Fatalf("row 4 = %v", e)
		}
		if e := wantStatus(t, rows, 5, "ok"); e["created"] != true || e["partner_id"] != "new-1" {
			t.Fatalf("row 5 = %v", e)
		}
		auto := wantStatus(t, rows, 6, "ok")["partner_id"].(string)
		if !strings.HasPrefix(auto, "p_") {
			t.Fatalf("assigned ID %q", auto)
		}
		if e := wantStatus(t, rows, 7, "error"); !strings.Contains(e["error"].(string), "groups[0]") {
			t.Fatalf("row 7 = %v", e)
		}
		if e := wantStatus(t, rows, 8, "error"); !strings.Contains(e["error"].(string), "relationship_type") {
			t.Fatalf("row 8 = %v", e)
		}
		if e := wantStatus(t, rows, 9, "error"); !strings.Contains(e["error"].(string), "cells") || e["partner_id"] != "a" {
			t.Fatalf("row 9 = %v", e)
		}
		if e := wantStatus(t, rows, 10, "error"); !strings.Contains(e["error"].(string), "social_reach") {
			t.Fatalf("row 10 = %v", e)
		}
		if tok := r.json(t)["consistency_token"]; tok == "" || r.header.Get("X-Consistency-Token") != tok {
			t.Fatalf("consistency token %v / %q", tok, r.header.Get("X-Consistency-Token"))
		}
		a := h.partner("a")
		if a["name"] != "Alpha, Ltd." || a["country"] != "FR" || a["social_reach"] != 42.0 ||
			a["description"] != "said \"hi\"\r\nover two lines" || fmt.Sprint(a["groups"]) != "[travel vip]" ||
			fmt.Sprint(a["media_properties"]) != "[https://a.example]" || a["email"] != "a@a.example" {
			t.Fatalf("a = %v", a)
		}
		b := h.partner("b")
		if b["name"] != "Beta" || b["country"] != nil || b["description"] != nil || b["assigned_to"] != nil || fmt.Sprint(b["groups"]) != "[]" {
			t.Fatalf("b = %v", b)
		}
		c := h.partner("c")
		if c["country"] != nil || fmt.Sprint(c["groups"]) != "[]" || c["version"] != 1.0 {
			t.Fatalf("c changed by its failing rows: %v", c)
		}
		n := h.partner("new-1")
		if n["name"] != "New One" || n["country"] != "NL" || fmt.Sprint(n["groups"]) != "[travel]" || n["assigned_to"] != "joe" || n["social_reach"] != 5.0 {
			t.Fatalf("new-1 = %v", n)
		}
		if p := h.partner(auto); p["name"] != "Auto ID" || p["relationship_type"] != "marketplace" {
			t.Fatalf("%s = %v", auto, p)
		}
		if r := h.do("GET", "/partners/d", nil); r.status != 404 {
			t.Fatalf("the failed creation of d left a partner: %d", r.status)
		}
		// The list sees the import (filters on the new values).
		list := h.do("GET", "/partners?group=travel&columns=name", nil).json(t)
		if list["total"] != 2.0 {
			t.Fatalf("group travel after import = %v", list)
		}
	})
}

// Problems with the upload as a whole are refused whole and apply nothing.
func TestImportRefusesBadUploadsWhole(t *testing.T) {
	h := start(t, config(t, ""))
	if r := h.do("POST", "/partners", map[string]any{"partner_id": "a", "name": "A", "relationship_type": "direct"}); r.status != 201 {
		t.Fatal(r.status)
	}
	head := h.head()
	big := "partner_id,name,relationship_type\r\n" + strings.Repeat("x,"+strings.Repeat("n", 1000)+",direct\r\n", 21<<10)
	for _, tc := range []struct {
		name, body, ctype string
		want              int
		mention           string
	}{
		{name: "unknown column", body: "partner_id,name,colour,nope\r\na,B,red,x\r\n", want: 422, mention: "colour"},
		{name: "repeated column", body: "partner_id,name,name\r\na,B,C\r\n", want: 422, mention: "twice"},
		{name: "empty body", body: "", want: 422, mention: "header"},
		{name: "broken quoting", body: "partner_id,name\r\na,\"B\r\nb,C\r\n", want: 422, mention: "line"},
		{name: "JSON instead of CSV", body: `{"partner_id":"a"}`, ctype: "application/json", want: 415},
		{name: "over 20 MiB", body: big, want: 413},
	} {
		ct := tc.ctype
		if ct == "" {
			ct = "text/csv; charset=utf-8"
		}
		r := h.do("POST", "/partners/import", tc.body, "Content-Type", ct)
		if r.status != tc.want || r.header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(r.body), tc.mention) {
			t.Errorf("%s: %d %s, want %d mentioning %q", tc.name, r.status, r.body, tc.want, tc.mention)
		}
		if h.head() != head {
			t.Fatalf("%s appended events", tc.name)
		}
	}
	// A request refused before it ran (415 here) leaves its Idempotency-Key
	// free: the corrected request with that key applies.
	csv := "partner_id,name,relationship_type\r\nkeyed,Keyed,direct\r\n"
	if r := h.do("POST", "/partners/import", csv, "Content-Type", "application/json", "Idempotency-Key", "ct-1"); r.status != 415 {
		t.Fatalf("CSV sent as JSON: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/partners/import", csv, "Content-Type", "text/csv", "Idempotency-Key", "ct-1"); r.status != 200 || h.head() != head+1 {
		t.Fatalf("the corrected import under the same key: %d %s", r.status, r.body)
	}
	head = h.head()
	// A row that breaks the quoting rules on its own line is that row's
	// error; the others are applied (it refused the whole upload).
	_, rows := h.importCSV("partner_id,name,relationship_type\r\nq1,Widget 5\" Display,direct\r\nq2,\"Shut\"x,direct\r\nq3,Fine,direct\r\n")
	if r := wantStatus(t, rows, 2, "error"); r["code"] != 422.0 || !strings.Contains(fmt.Sprint(r["error"]), "bare") {
		t.Errorf("row with a bare quote: %v", r)
	}
	if r := wantStatus(t, rows, 3, "error"); !strings.Contains(fmt.Sprint(r["error"]), "closing quote") {
		t.Errorf("row with text after a closing quote: %v", r)
	}
	wantStatus(t, rows, 4, "ok")
	// Such a row still says whose it is, with an Idempotency-Key too (which
	// gave it an ID derived from the key, as if the server had assigned one).
	for _, key := range []string{"", "quotes-1"} {
		_, rows = h.importCSV("partner_id,name,relationship_type\r\nq1,Widget 5\" Display,direct\r\nq2,\"Shut\"x,direct\r\n,\"No\"id,direct\r\n", "Idempotency-Key", key)
		for row, id := range map[int]string{2: "q1", 3: "q2", 4: ""} {
			if r := wantStatus(t, rows, row, "error"); r["partner_id"] != id {
				t.Errorf("key %q: malformed row %d names partner %v, want %q", key, row, r["partner_id"], id)
			}
		}
	}
	head = h.head()

	// A media type ignores case, with an Idempotency-Key too (that path
	// read Text/CSV as JSON, capped at 1 MiB: a 413).
	var sb strings.Builder
	sb.WriteString("partner_id,name,relationship_type,description\r\n")
	for i := range 600 {
		fmt.Fprintf(&sb, "case%d,Case %d,direct,%s\r\n", i, i, strings.Repeat("d", 2000))
	}
	if r := h.do("POST", "/partners/import", sb.String(), "Content-Type", "Text/CSV", "Idempotency-Key", "csv-case"); r.status != 200 {
		t.Fatalf("a 1.2 MB Text/CSV upload with an Idempotency-Key: %d %.300s", r.status, r.body)
	}
	head = h.head()

	// A declared legacy charset is decoded (a spreadsheet saving "CSV" in
	// windows-1252); one this server does not know is refused, not read
	// as UTF-8.
	latin := "partner_id,name,relationship_type\r\ncp1,Caf\xe9 M\xfcller,direct\r\n"
	cp := h.do("POST", "/partners/import", latin, "Content-Type", "text/csv; charset=windows-1252")
	if cp.status != 200 || !strings.Contains(string(cp.body), `"ok"`) {
		t.Fatalf("a windows-1252 upload: %d %s", cp.status, cp.body)
	}
	if p := h.expect(200, "GET", "/partners/cp1", nil, "X-Consistency-Token", cp.json(t)["consistency_token"].(string)).json(t); p["name"] != "Café Müller" {
		t.Fatalf("name of a windows-1252 row: %v", p["name"])
	}
	head = h.head()
	if r := h.do("POST", "/partners/import", latin, "Content-Type", "text/csv; charset=x-klingon"); r.status != 415 || h.head() != head {
		t.Fatalf("an unknown charset: %d %s", r.status, r.body)
	}
	if _, rows := h.importCSV("partner_id,name,relationship_type\r\ncp2,Caf\xe9,direct\r\n"); rows[2]["status"] != "error" {
		t.Fatalf("Latin-1 bytes sent as UTF-8 are a row error: %v", rows[2])
	}

	// Header cells name columns in any case, with spaces or hyphens for
	// underscores, as a spreadsheet writes them; a file with CR-only line
	// ends is refused with a hint.
	_, rows = h.importCSV("Partner ID, NAME ,Relationship-Type\r\nhdr1,Header Case,direct\r\n")
	if r := wantStatus(t, rows, 2, "ok"); r["partner_id"] != "hdr1" {
		t.Fatalf("row of a spreadsheet header: %v", r)
	}
	if r := h.do("POST", "/partners/import", "partner_id,Name,name\r\na,B,C\r\n", "Content-Type", "text/csv"); r.status != 422 || !strings.Contains(string(r.body), "twice") {
		t.Fatalf("Name and name: %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/partners/import", "partner_id,name,relationship_type\rcr1,CR,direct\r", "Content-Type", "text/csv"); r.status != 422 || !strings.Contains(string(r.body), "CR alone") {
		t.Fatalf("CR-only line ends: %d %s", r.status, r.body)
	}
	// Rows are numbered as a spreadsheet shows them: a blank line is a row,
	// a quoted line break is not a new one.
	_, rows = h.importCSV("partner_id,name,relationship_type\r\n\r\nrn3,Three,direct\r\n\r\nrn5,\"Five\non two lines\",direct\r\nrn6,Six,direct\r\n")
	for row, id := range map[int]string{3: "rn3", 5: "rn5", 6: "rn6"} {
		if r := wantStatus(t, rows, row, "ok"); r["partner_id"] != id {
			t.Fatalf("row %d is %v, want %s", row, r, id)
		}
	}
	// Media types ignore case (RFC 9110).
	if r := h.do("POST", "/partners/import", "partner_id,name,relationship_type\r\ncase1,Case,direct\r\n", "Content-Type", "Text/CSV; charset=UTF-8"); r.status != 200 {
		t.Fatalf("Text/CSV: %d %s", r.status, r.body)
	}
	// A JSON body keeps its 1 MiB limit.
	if r := h.do("POST", "/groups", `{"name":"`+strings.Repeat("g", 1<<20)+`"}`); r.status != 413 {
		t.Fatalf("a JSON body over 1 MiB: %d", r.status)
	}
}

// With an Idempotency-Key a repeat applies nothing and answers the first
// response; after a crash that lost the request's record, a retry skips
// every row the first attempt applied (even a row later changed by hand is
// not overwritten), and a row without partner_id finds the partner it
// created instead of creating another.
func TestImportIdempotency(t *testing.T) {
	backends(t, dbImport, func(t *testing.T, h *harness) {
		file := "partner_id,name,relationship_type,country\r\nk1,K One,direct,DE\r\n,Anon,direct,FR\r\nk2,K Two,direct,XX\r\n"
		first, rows := h.importCSV(file, "Idempotency-Key", "imp-1")
		if first.status != 200 {
			t.Fatalf("first: %d %s", first.status, first.body)
		}
		if k1 := wantStatus(t, rows, 2, "ok"); k1["created"] != true {
			t.Fatalf("row 2: %v, want created", k1)
		}
		anon := wantStatus(t, rows, 3, "ok")["partner_id"].(string)
		wantStatus(t, rows, 4, "error")
		head := h.head()
		again, _ := h.importCSV(file, "Idempotency-Key", "imp-1")
		if string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" || h.head() != head {
			t.Fatalf("the repeat was applied again: %s", again.body)
		}
		if r := h.do("POST", "/partners/import", file+"k3,K3,direct,\r\n", "Content-Type", "text/csv", "Idempotency-Key", "imp-1"); r.status != 422 {
			t.Fatalf("same key, other body: %d %s", r.status, r.body)
		}
		// A crash: the idempotency record is gone (a lock left by a dead
		// process expires), and meanwhile k1 was changed by hand.
		if r := h.do("PATCH", "/partners/k1", map[string]any{"name": "Renamed by hand"}); r.status != 200 {
			t.Fatal(r.status, string(r.body))
		}
		sum := sha256.Sum256([]byte("imp-1"))
		if err := h.app.HTTP.Idempotency.Delete(t.Context(), "pd:idem:{acme}:"+hex.EncodeToString(sum[:])); err != nil {
			t.Fatal(err)
		}
		head = h.head()
		retry, rows := h.importCSV(file, "Idempotency-Key", "imp-1")
		if retry.status != 200 || retry.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry: %d %s", retry.status, retry.body)
		}
		// It reports what the first attempt did: both rows created.
		if k1 := wantStatus(t, rows, 2, "ok"); k1["created"] != true {
			t.Fatalf("the retry reports the row that created k1 as %v", k1)
		}
		if row := wantStatus(t, rows, 3, "ok"); row["partner_id"] != anon || row["created"] != true {
			t.Fatalf("the retry answered %v, not the first attempt's %s, created", row, anon)
		}
		wantStatus(t, rows, 4, "error")
		if h.head() != head {
			t.Fatal("the retry after a crash appended events")
		}
		if k1 := h.partner("k1"); k1["name"] != "Renamed by hand" {
			t.Fatalf("the retry re-applied an applied row: %v", k1)
		}
		if list := h.do("GET", "/partners?q=anon", nil).json(t); list["total"] != 1.0 {
			t.Fatalf("partners named Anon: %v", list)
		}
		// Without a key, the same file is applied as new: the named rows are
		// unchanged, the anonymous row creates another partner.
		_, rows = h.importCSV(file)
		wantStatus(t, rows, 2, "ok") // name set back from the hand edit
		if id := wantStatus(t, rows, 3, "ok")["partner_id"]; id == anon {
			t.Fatal("without a key the anonymous row reused the keyed ID")
		}
	})
}

// cancelOnEOF cancels a request's context a moment after its body was read
// to the end: a client that sent the whole upload, then went away.
type cancelOnEOF struct {
	r      *strings.Reader
	cancel context.CancelFunc
	after  time.Duration
	once   sync.Once
}

func (b *cancelOnEOF) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.once.Do(func() { time.AfterFunc(b.after, b.cancel) })
	}
	return n, err
}

// postAndLeave sends a keyed POST whose client goes away `after` its body
// was sent.
func (h *harness) postAndLeave(path, ctype, body, key string, after time.Duration) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", h.base+path, &cancelOnEOF{r: strings.NewReader(body), cancel: cancel, after: after})
	if err != nil {
		h.t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+h.key)
	req.Header.Set("Idempotency-Key", key)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		h.t.Logf("POST %s answered before the client left; this run checks only the replay", path)
	}
}

// untilDone repeats a keyed retry while it answers 409 (the first attempt
// still runs), for up to a minute.
func untilDone(retry func() int) {
	for deadline := time.Now().Add(time.Minute); retry() == 409 && time.Now().Before(deadline); {
	}
}

// A keyed import whose client leaves once the body is in runs to its end:
// the answer saved for its key tells every row's outcome, so the retry
// gets them all, and every row is applied once. (The rows after the
// disconnect failed with "500" and were replayed as failures forever.)
func TestImportRunsToItsEndWhenTheClientLeaves(t *testing.T) {
	h := start(t, config(t, ""))
	const n = 3000
	var b strings.Builder
	b.WriteString("partner_id,name,relationship_type\n")
	for i := range n {
		fmt.Fprintf(&b, "gone%04d,Gone %d,direct\n", i, i)
	}
	h.postAndLeave("/partners/import", "text/csv", b.String(), "imp-gone", 100*time.Millisecond)
	var retry response
	var rows map[int]importRow
	untilDone(func() int { retry, rows = h.importCSV(b.String(), "Idempotency-Key", "imp-gone"); return retry.status })
	if retry.status != 200 || len(rows) != n {
		t.Fatalf("retry: %d, %d rows: %.300s", retry.status, len(rows), retry.body)
	}
	for row := 2; row <= n+1; row++ {
		wantStatus(t, rows, row, "ok")
	}
	h.caughtUp()
	if list := h.do("GET", "/partners?q=gone&limit=1", nil).json(t); list["total"] != float64(n) {
		t.Fatalf("partners after the import: %v, want %d", list["total"], n)
	}

	// A bulk action the same way: every partner joins the group, once.
	h.mustCreate("/groups", map[string]any{"id": "left", "name": "Left"})
	body := `{"filter":{"q":["gone"]},"add":["left"]}`
	h.postAndLeave("/bulk/groups", "application/json", body, "bulk-gone", 50*time.Millisecond)
	var again response
	untilDone(func() int {
		again = h.do("POST", "/bulk/groups", body, "Idempotency-Key", "bulk-gone")
		return again.status
	})
	results, _ := again.json(t)["results"].([]any)
	if again.status != 200 || len(results) != n {
		t.Fatalf("bulk retry: %d, %d results: %.300s", again.status, len(results), again.body)
	}
	for _, r := range results {
		if st := r.(map[string]any)["status"]; st != "ok" {
			t.Fatalf("bulk result %v", r)
		}
	}
	h.caughtUp()
	if list := h.do("GET", "/partners?group=left&limit=1", nil).json(t); list["total"] != float64(n) {
		t.Fatalf("partners in the group after the bulk action: %v, want %d", list["total"], n)
	}
}

// A file of 100k rows (7.5 MB; 10k under the race detector, which slows
// everything ~10x) is read from disk row by row and applied; every partner
// lands in the read model.
func TestImportLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("large import")
	}
	n := 100_000
	if raceEnabled {
		n = 10_000
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.UseCRLF = true // it writes the description's LF as CRLF too, which the import keeps
	_ = w.Write([]string{"partner_id", "name", "relationship_type", "country", "social_reach", "description"})
	countries := []string{"DE", "FR", "NL", "US"}
	for i := 0; i < n; i++ {
		_ = w.Write([]string{fmt.Sprintf("p%06d", i), fmt.Sprintf("Partner, no. %d", i), "direct", countries[i%4],
			fmt.Sprint(i), "quoted \"text\"\nspanning lines"})
	}
	w.Flush()
	url := redisDB(t, dbImportLarge)
	// Leave the database empty (FLUSHDB ASYNC) for the next run: flushing
	// 100k partners' keys synchronously outlasts the client's timeout.
	t.Cleanup(func() {
		opt, _ := redis.ParseURL(url)
		opt.DisableIdentity = true
		c := redis.NewClient(opt)
		defer c.Close()
		_ = c.FlushDBAsync(context.Background()).Err()
	})
	h := start(t, config(t, url))
	began := time.Now()
	r, rows := h.importCSV(b.String())
	t.Logf("import of %d rows: %v", n, time.Since(began))
	if r.status != 200 || len(rows) != n {
		t.Fatalf("import: %d, %d results", r.status, len(rows))
	}
	for row, res := range rows {
		if res["status"] != "ok" || res["created"] != true {
			t.Fatalf("row %d = %v", row, res)
		}
	}
	h.caughtUp()
	t.Logf("imported and projected: %v", time.Since(began))
	list := h.do("GET", "/partners?country=NL&limit=1", nil).json(t)
	if list["total"] != float64(n/4) {
		t.Fatalf("NL partners = %v", list["total"])
	}
	if p := h.partner(fmt.Sprintf("p%06d", n-1)); p["name"] != fmt.Sprintf("Partner, no. %d", n-1) || p["social_reach"] != float64(n-1) || p["description"] != "quoted \"text\"\r\nspanning lines" {
		t.Fatalf("last partner = %v", p)
	}
}

// Bulk and import answers carry one consistency token that a read can wait
// on for every partner the request wrote, not only the last one.
func TestBulkAndImportAnswerWithAToken(t *testing.T) {
	h := start(t, config(t, ""))
	const n = 60
	var csv strings.Builder
	csv.WriteString("partner_id,name,relationship_type\r\n")
	var ids []string
	for i := range n {
		fmt.Fprintf(&csv, "t%02d,T%02d,direct\r\n", i, i)
		ids = append(ids, fmt.Sprintf("t%02d", i))
	}
	r, _ := h.importCSV(csv.String())
	tok, _ := r.json(t)["consistency_token"].(string)
	if tok == "" {
		t.Fatalf("import answer without a token: %s", r.body)
	}
	if g := h.do("GET", "/partners?relationship_type=direct&limit=1", nil, "X-Consistency-Token", tok); g.status != 200 || g.json(t)["total"] != float64(n) {
		t.Fatalf("read with the import's token: %d %s", g.status, g.body)
	}
	b := h.do("POST", "/bulk/assigned-to", map[string]any{"partner_ids": ids, "user": "joe"})
	tok, _ = b.json(t)["consistency_token"].(string)
	if b.status != 200 || tok == "" || b.header.Get("X-Consistency-Token") != tok {
		t.Fatalf("bulk answer: %d %s", b.status, b.body)
	}
	if g := h.do("GET", "/partners?assigned_to=joe&limit=1", nil, "X-Consistency-Token", tok); g.status != 200 || g.json(t)["total"] != float64(n) {
		t.Fatalf("read with the bulk's token: %d %s", g.status, g.body)
	}
	if g := h.do("GET", "/partners/t00", nil, "X-Consistency-Token", "fmJhdGNoOjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nw"); g.status != 400 {
		t.Fatalf("an unknown batch token: %d %s", g.status, g.body)
	}
}

// A sheet exported with its version column is applied only to the partners
// nobody changed since: a stale row is a 409 and the colleague's edit
// stays (the import ignored version and overwrote it). An empty version
// cell applies its row as it is; a bad one is that row's 422.
func TestImportWithVersionsRefusesStaleRows(t *testing.T) {
	h := start(t, config(t, ""))
	for _, id := range []string{"v1", "v2", "v3"} {
		h.mustCreate("/partners", map[string]any{"partner_id": id, "name": "Name " + id, "relationship_type": "direct", "description": "old"})
	}
	h.caughtUp()
	exp := h.do("GET", "/partners.csv?columns=partner_id,version,description&sort=partner_id", nil)
	if exp.status != 200 || !strings.Contains(string(exp.body), "v1,1,old") {
		t.Fatalf("export: %d %s", exp.status, exp.body)
	}
	h.expect(200, "PATCH", "/partners/v1", map[string]any{"description": "a colleague's edit"})
	sheet := strings.ReplaceAll(string(exp.body), ",old", ",from the sheet")
	sheet = strings.Replace(sheet, "v3,1,", "v3,,", 1)
	sheet += "v4,x,bad version\r\n"
	_, rows := h.importCSV(sheet)
	if r := wantStatus(t, rows, 2, "error"); r["code"] != 409.0 || r["partner_id"] != "v1" {
		t.Errorf("stale row: %v, want 409", r)
	}
	wantStatus(t, rows, 3, "ok")
	wantStatus(t, rows, 4, "ok") // no version given: applied as it is
	if r := wantStatus(t, rows, 5, "error"); r["code"] != 422.0 || !strings.Contains(fmt.Sprint(r["error"]), "version") {
		t.Errorf("bad version cell: %v", r)
	}
	h.caughtUp()
	for id, want := range map[string]string{"v1": "a colleague's edit", "v2": "from the sheet", "v3": "from the sheet"} {
		if got := h.partner(id)["description"]; got != want {
			t.Errorf("%s description = %v, want %q", id, got, want)
		}
	}
}
