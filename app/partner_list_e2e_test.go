package app_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partnerd/partnerd/domain"
)

func TestPartnerListHTTP(t *testing.T) {
	h := start(t, config(t, ""))
	var last response
	for _, p := range []map[string]any{
		{"partner_id": "c1", "name": `Comma, "Quoted" Co`, "country": "DE", "url": "https://comma.example", "relationship_type": "direct",
			"custom_fields": map[string]string{"niche": "a:b"}},
		{"partner_id": "c2", "name": "Plain", "country": "FR", "relationship_type": "direct", "size": "m"},
		{"partner_id": "c3", "name": "another", "country": "DE", "relationship_type": "marketplace", "size": "m"},
	} {
		last = h.do("POST", "/partners", p)
		if last.status != 201 {
			t.Fatalf("create: %d %s", last.status, last.body)
		}
	}
	tok := last.header.Get("X-Consistency-Token")
	list := func(query string) map[string]any {
		t.Helper()
		r := h.do("GET", "/partners?"+query, nil, "X-Consistency-Token", tok)
		if r.status != 200 {
			t.Fatalf("GET /partners?%s: %d %s", query, r.status, r.body)
		}
		return r.json(t)
	}
	ids := func(page map[string]any) string {
		var out []string
		for _, it := range page["items"].([]any) {
			out = append(out, it.(map[string]any)["partner_id"].(string))
		}
		return strings.Join(out, " ")
	}
	if p := list("country=DE"); ids(p) != "c1 c3" || p["total"] != 2.0 {
		t.Errorf("country=DE: %v", p)
	}
	if p := list("country=DE&size=m"); ids(p) != "c3" {
		t.Errorf("country=DE&size=m: %v", ids(p))
	}
	if p := list("country=DE&country=FR&sort=-name"); ids(p) != "c2 c1 c3" {
		t.Errorf("sort=-name: %v", ids(p))
	}
	if p := list("custom.niche=" + url.QueryEscape("a:b")); ids(p) != "c1" {
		t.Errorf("custom.niche: %v", ids(p))
	}
	if p := list("q=OMM"); ids(p) != "c1" {
		t.Errorf("q: %v", ids(p))
	}
	p := list("columns=name,country&sort=name&limit=2")
	if ids(p) != "c3 c1" || p["next_cursor"] == nil {
		t.Fatalf("page 1: %v", p)
	}
	item := p["items"].([]any)[0].(map[string]any)
	if len(item) != 3 || item["name"] != "another" || item["country"] != "DE" {
		t.Errorf("columns: %v", item)
	}
	if p2 := list("columns=name,country&sort=name&limit=2&cursor=" + url.QueryEscape(p["next_cursor"].(string))); ids(p2) != "c2" || p2["next_cursor"] != nil {
		t.Errorf("page 2: %v", p2)
	}

	for _, c := range []struct {
		query  string
		status int
	}{
		{"sort=bogus", 422},
		{"sort=-bogus", 422},
		{"status=bogus", 422},
		{"terms_update=soon", 422},
		{"size=xxl", 422},
		{"country=zzz", 422}, // no partner can hold it: it was an empty 200
		{"country=de&country=QQ", 422},
		{"columns=name,nope", 422},
		{"q=%01", 422},
		{"limit=0", 422},
		{"limit=x", 400},
		{"cursor=not-a-cursor!", 400},
		{"cursor=" + url.QueryEscape(p["next_cursor"].(string)) + "&sort=-name", 400},
		{"unknown=1", 400},
		{"custom.=x", 400},
		{"custom.bad%20name=x", 422}, // no partner can hold it: it was an empty 200
		{"custom.niche=" + strings.Repeat("x", 4001), 422},
		{"sort=name&sort=-name", 400},
	} {
		for _, path := range []string{"/partners?", "/partners.csv?"} {
			if path == "/partners.csv?" && (strings.HasPrefix(c.query, "limit") || strings.HasPrefix(c.query, "cursor")) {
				continue
			}
			r := h.do("GET", path+c.query, nil)
			if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("GET %s%s: %d %s %s, want %d problem+json", path, c.query, r.status, r.header.Get("Content-Type"), r.body, c.status)
			}
		}
	}

	// A custom value as long as a partner may hold finds it (the filter
	// took at most 256 bytes).
	long := strings.Repeat("é", 1000)
	h.expect(200, "PATCH", "/partners/c2", map[string]any{"custom_fields": map[string]any{"essay": long}})
	h.caughtUp()
	if got := ids(list("custom.essay=" + url.QueryEscape(long))); got != "c2" {
		t.Errorf("custom filter on a 2000-byte value: %v", got)
	}

	// CSV: header row, RFC 4180 quoting, the same filters and columns.
	r := h.do("GET", "/partners.csv?columns=partner_id,name,country,custom_fields&country=DE&sort=partner_id", nil, "X-Consistency-Token", tok)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	want := "partner_id,name,country,custom_fields\r\n" +
		`c1,"Comma, ""Quoted"" Co",DE,"{""niche"":""a:b""}"` + "\r\n" +
		"c3,another,DE,\r\n"
	if string(r.body) != want {
		t.Errorf("csv body:\n%q\nwant\n%q", r.body, want)
	}
	recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil || len(recs) != 3 || recs[1][1] != `Comma, "Quoted" Co` {
		t.Errorf("csv parse: %v %v", recs, err)
	}
	// Default columns.
	r = h.do("GET", "/partners.csv?q=plain", nil)
	if lines := strings.Split(strings.TrimSpace(string(r.body)), "\r\n"); len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "partner_id,name,url,country") || !strings.HasPrefix(lines[1], "c2,Plain,,FR") {
		t.Errorf("default columns: %q", r.body)
	}
}

func TestPartnerExportLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large export")
	}
	h := start(t, config(t, ""))
	ctx := context.Background()
	const n = 5000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				_, _, err := h.app.Commands.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: "acme", PartnerID: fmt.Sprintf("x%05d", i),
					Profile: domain.Profile{Name: fmt.Sprintf("Partner %d, \"big\"", i), Country: []string{"DE", "FR"}[i%2], RelationshipType: "direct"}},
					meta())
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := h.app.WaitCaughtUp(wctx); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", h.base+"/partners.csv?columns=partner_id,name&sort=-partner_id", nil)
	req.Header.Set("Authorization", "Bearer "+h.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Streamed: no Content-Length, and the header row can be read before
	// the rest of the body.
	if resp.StatusCode != 200 || resp.ContentLength != -1 {
		t.Fatalf("status %d, content length %d", resp.StatusCode, resp.ContentLength)
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || first != "partner_id,name\r\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	recs, err := csv.NewReader(br).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d rows, want %d", len(recs), n)
	}
	for i, rec := range recs {
		j := n - 1 - i
		if rec[0] != fmt.Sprintf("x%05d", j) || rec[1] != fmt.Sprintf("Partner %d, \"big\"", j) {
			t.Fatalf("row %d: %q", i, rec)
		}
	}
	// A filtered export, and the JSON total agrees.
	r := h.do("GET", "/partners.csv?country=DE&columns=partner_id", nil)
	if rows := strings.Count(string(r.body), "\r\n"); rows != n/2+1 {
		t.Errorf("filtered export: %d lines", rows)
	}
	var page struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal(h.do("GET", "/partners?country=DE&limit=1", nil).body, &page); err != nil || page.Total != n/2 {
		t.Errorf("total %d, %v", page.Total, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}

// A q of "-" or "+" finds the partners whose name, ID or URL holds it, and
// only those, on both Redis backends (the embedded one read the registry
// range "[-" as -inf and "[+" as +inf).
func TestPartnerSearchForPunctuation(t *testing.T) {
	backends(t, dbEndToEnd, func(t *testing.T, h *harness) {
		for id, name := range map[string]string{"plain": "Plain Name", "plus": "C+ Club", "dash": "Dash-Board", "both": "A+B-C"} {
			h.mustCreate("/partners", map[string]any{"partner_id": id, "name": name, "relationship_type": "direct"})
		}
		h.caughtUp()
		for q, want := range map[string]string{"-": "both dash", "+": "both plus", "c+": "plus", "-b": "dash", "+b": "both"} {
			page := h.expect(200, "GET", "/partners?sort=partner_id&q="+url.QueryEscape(q), nil).json(t)
			var got []string
			for _, it := range page["items"].([]any) {
				got = append(got, it.(map[string]any)["partner_id"].(string))
			}
			if strings.Join(got, " ") != want || page["total"] != float64(len(got)) {
				t.Errorf("q=%s: %v (total %v), want %s", q, got, page["total"], want)
			}
		}
	})
}
