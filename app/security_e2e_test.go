package app_test

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/commands"
)

// No API key, good or bad, ever reaches the log: not on a rejected
// request, an accepted one, a failing one, nor when programs and keys are
// created or issued.
func TestAPIKeysNeverReachTheLog(t *testing.T) {
	logger, log := capturedLogger()
	cfg := config(t, "")
	cfg.BootstrapKey = "bootstrap-secret-key-0123456789"
	h := startLogged(t, cfg, logger)
	badKey := "pd_bad-guess-of-a-key-abcdefghijklmnopqrstuvwxyz"
	if r := h.do("GET", "/partners", nil, "Authorization", "Bearer "+badKey); r.status != 401 {
		t.Fatalf("bad key: %d", r.status)
	}
	if r := h.do("GET", "/partners", nil); r.status != 200 {
		t.Fatalf("good key: %d %s", r.status, r.body)
	}
	// A key of the right shape that the projection never saw, on every auth path.
	if r := h.do("GET", h.srv.URL+"/v1/projections", nil, "Authorization", "Bearer "+badKey); r.status != 401 {
		t.Fatalf("bad key on /v1/projections: %d", r.status)
	}
	_, created, err := h.app.Commands.CreateProgram.Handle(t.Context(), createProgram("globex"), meta())
	if err != nil {
		t.Fatal(err)
	}
	_, keyID, issued, err := h.app.Commands.IssueAPIKey.Handle(t.Context(), "globex", meta())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.WaitCaughtUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", h.srv.URL+"/v1/programs/globex/partners", nil, "Authorization", "Bearer "+issued); r.status != 200 {
		t.Fatalf("issued key: %d %s", r.status, r.body)
	}
	if _, err := h.app.Commands.RevokeAPIKey.Handle(t.Context(), "globex", keyID, meta()); err != nil {
		t.Fatal(err)
	}
	if err := h.app.WaitCaughtUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", h.srv.URL+"/v1/programs/globex/partners", nil, "Authorization", "Bearer "+issued); r.status != 401 {
		t.Fatalf("revoked key: %d", r.status)
	}
	h.stop() // flush whatever shutdown logs
	out := log.String()
	if !strings.Contains(out, "level=") {
		t.Fatal("the app logged nothing at all; the capture is not wired")
	}
	for name, secret := range map[string]string{"bad key": badKey, "bootstrap key": cfg.BootstrapKey,
		"created key": created, "issued key": issued} {
		// Also any 16-character piece, in case a key is cut or quoted.
		for i := 0; i+16 <= len(secret); i += 8 {
			if strings.Contains(out, secret[i:i+16]) {
				t.Fatalf("the log holds part of the %s %q:\n%s", name, secret[i:i+16], out)
			}
		}
	}
	if strings.Contains(out, commands.HashAPIKey(issued)) {
		t.Fatal("the log holds a key hash")
	}
}

// Each API key has its own token bucket: a key over its limit gets 429
// problem+json with Retry-After, while another key of the same program and
// a key of another program go on.
func TestRateLimitIsPerAPIKey(t *testing.T) {
	cfg := config(t, "")
	cfg.RateLimit, cfg.RateBurst = 0.5, 3 // one token every 2 s, 3 at once
	h := start(t, cfg)
	_, _, second, err := h.app.Commands.IssueAPIKey.Handle(t.Context(), "acme", meta())
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := h.app.Commands.CreateProgram.Handle(t.Context(), createProgram("globex"), meta())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.WaitCaughtUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if r := h.do("GET", "/partners", nil); r.status != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	r := h.do("GET", "/partners", nil)
	if r.status != 429 || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("over the burst: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if p := r.json(t); p["status"] != 429.0 {
		t.Fatalf("problem = %v", p)
	}
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 2 {
		t.Fatalf("Retry-After %q, want 1-2 seconds", r.header.Get("Retry-After"))
	}
	// A limited write appends nothing.
	head := h.head()
	if r := h.do("POST", "/groups", map[string]any{"name": "G"}); r.status != 429 {
		t.Fatalf("write over the limit: %d", r.status)
	}
	if h.head() != head {
		t.Fatal("a rate-limited write appended events")
	}
	for name, key := range map[string]string{"another key of the program": second} {
		for i := 0; i < 3; i++ {
			if r := h.do("GET", "/partners", nil, "Authorization", "Bearer "+key); r.status != 200 {
				t.Fatalf("%s, request %d: %d", name, i, r.status)
			}
		}
	}
	for i := 0; i < 3; i++ {
		if r := h.do("GET", h.srv.URL+"/v1/programs/globex/partners", nil, "Authorization", "Bearer "+other); r.status != 200 {
			t.Fatalf("another program's key, request %d: %d", i, r.status)
		}
	}
	// The bucket refills: after Retry-After the first key works again.
	time.Sleep(time.Duration(secs) * time.Second)
	if r := h.do("GET", "/partners", nil); r.status != 200 {
		t.Fatalf("after Retry-After: %d", r.status)
	}
	// Requests without a valid key are not limited per key (they are 401).
	for i := 0; i < 5; i++ {
		if r := h.do("GET", "/partners", nil, "Authorization", "Bearer nope-nope-nope-nope"); r.status != 401 {
			t.Fatalf("bad key: %d", r.status)
		}
	}
}

func TestRateLimitOff(t *testing.T) {
	cfg := config(t, "")
	cfg.RateLimit, cfg.RateBurst = 0, 1
	h := start(t, cfg)
	for i := 0; i < 50; i++ {
		if r := h.do("GET", "/groups", nil); r.status != 200 {
			t.Fatalf("request %d with the limit off: %d", i, r.status)
		}
	}
}

// JSON bodies are bounded in nesting and in object size (422, naming the
// body), before anything is decoded or appended; malformed JSON stays 400.
func TestJSONBodyShapeIsBounded(t *testing.T) {
	h := start(t, config(t, ""))
	head := h.head()
	deep := `{"name":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`
	wide := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"name":"W","relationship_type":"direct","custom_fields":{`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"f%d":"v"`, i)
		}
		b.WriteString(`}}`)
		return b.String()
	}
	for _, tc := range []struct {
		name, path, body string
		want             int
	}{
		{name: "40 levels deep", path: "/groups", body: deep, want: 422},
		{name: "an object of 1001 members", path: "/partners", body: wide(1001), want: 422},
		{name: "brackets inside strings do not count", path: "/groups", body: `{"name":"` + strings.Repeat("[{", 100) + `"}`, want: 201},
		{name: "malformed", path: "/groups", body: `{"name":`, want: 400},
		{name: "unknown field", path: "/groups", body: `{"name":"x","nope":1}`, want: 422},
	} {
		r := h.do("POST", tc.path, tc.body)
		if r.status != tc.want || r.header.Get("Content-Type") != "application/problem+json" && tc.want != 201 {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.want)
		}
		if tc.want == 422 && tc.name != "unknown field" && !strings.Contains(string(r.body), `"field":"body"`) {
			t.Errorf("%s: problem does not name the body: %s", tc.name, r.body)
		}
		if tc.want != 201 && r.status != 201 && h.head() != head {
			t.Fatalf("%s appended events", tc.name)
		}
		head = h.head()
	}
	// Within the bounds: 100 custom fields (the domain's own limit) pass.
	if r := h.do("POST", "/partners", wide(100)); r.status != 201 {
		t.Fatalf("100 custom fields: %d %s", r.status, r.body)
	}
}

// List parameters are bounded: q ≤ 200 characters, limit ≤ 1000, at most
// 100 values per filter.
func TestListParametersAreBounded(t *testing.T) {
	h := start(t, config(t, ""))
	many := strings.Repeat("country=DE&", 101)
	for _, tc := range []struct {
		query string
		want  int
	}{
		{query: "q=" + strings.Repeat("é", 200), want: 200},
		{query: "q=" + strings.Repeat("a", 201), want: 422},
		{query: "limit=1000", want: 200},
		{query: "limit=1001", want: 422},
		{query: "limit=0", want: 422},
		{query: many, want: 422},
		{query: strings.Repeat("country=DE&", 100), want: 200},
	} {
		r := h.do("GET", "/partners?"+tc.query, nil)
		if r.status != tc.want {
			t.Errorf("%.40s…: %d %s, want %d", tc.query, r.status, r.body, tc.want)
		}
	}
}

// Every string a client sends is data in Redis: values that look like key
// patterns, hash tags, Lua or Redis syntax are stored and matched as
// themselves, never widen a filter or a search, and never make a key
// outside the program's hash tag.
func TestHostileStringsAreDataInRedis(t *testing.T) {
	backends(t, dbRedisData, func(t *testing.T, h *harness) {
		hostile := []string{"*", "?", "[a-z]*", "{acme}", "}{globex", "a:b:*", "%2A", "') redis.call('FLUSHALL') --", "\\x00*", "\r\nFLUSHALL\r\n"}
		for i, v := range hostile {
			name := "N" + v
			if strings.ContainsAny(v, "\r\n") {
				name = fmt.Sprintf("N%d", i) // names are one line; the value goes into a custom field
			}
			body := map[string]any{"partner_id": fmt.Sprintf("h%d", i), "name": name, "relationship_type": "direct",
				"state": v, "custom_fields": map[string]string{"k": v}}
			if r := h.do("POST", "/partners", body); r.status != 201 {
				t.Fatalf("partner with %q: %d %s", v, r.status, r.body)
			}
		}
		if r := h.do("POST", "/partners", map[string]any{"partner_id": "plain", "name": "Plain", "relationship_type": "direct", "state": "Bavaria"}); r.status != 201 {
			t.Fatal(r.status)
		}
		h.caughtUp()
		for i, v := range hostile {
			q := url.Values{"state": {v}, "custom.k": {v}}
			list := h.do("GET", "/partners?"+q.Encode(), nil)
			if list.status != 200 {
				t.Fatalf("filter %q: %d %s", v, list.status, list.body)
			}
			m := list.json(t)
			items := m["items"].([]any)
			if m["total"] != 1.0 || len(items) != 1 || items[0].(map[string]any)["partner_id"] != fmt.Sprintf("h%d", i) {
				t.Fatalf("filter %q matched %v", v, m)
			}
		}
		// A search for pattern characters finds only names that contain them.
		for _, tc := range []struct {
			q    string
			want float64
		}{{q: "*", want: 4}, {q: "[a-z]", want: 1}, {q: "{acme}", want: 1}, {q: "?", want: 1}, {q: "%", want: 1}} {
			m := h.do("GET", "/partners?"+url.Values{"q": {tc.q}}.Encode(), nil).json(t)
			if m["total"] != tc.want {
				t.Errorf("q=%q: total %v, want %v", tc.q, m["total"], tc.want)
			}
		}
		// Every key the program's data made carries the program's hash tag
		// as its first braces, and no value appears in a key raw.
		var cursor uint64
		keys := 0
		for {
			batch, next, err := h.app.Redis.Scan(t.Context(), cursor, "*", 1000).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range batch {
				keys++
				if !strings.HasPrefix(k, "pd:partners:") && !strings.HasPrefix(k, "pd:catalog:") {
					continue
				}
				if i := strings.IndexByte(k, '{'); i >= 0 && !strings.HasPrefix(k[i:], "{acme}:") && !strings.HasSuffix(k, ":gen") {
					t.Errorf("key %q: its hash tag is not the program's", k)
				}
				if strings.Count(k, "{") > 1 || strings.Count(k, "}") > 1 || strings.ContainsAny(k, "*?[ \r\n") {
					t.Errorf("key %q holds raw client data", k)
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		if keys < 20 {
			t.Fatalf("only %d keys scanned", keys)
		}
	})
}

// What the OpenAPI fuzz run (scripts/schemathesis.sh) found, kept fixed.
func TestSchemathesisFindingsStayFixed(t *testing.T) {
	h := start(t, config(t, ""))
	if r := h.do("POST", "/partners", map[string]any{"partner_id": "a", "name": "A", "relationship_type": "direct"}); r.status != 201 {
		t.Fatal(r.status)
	}
	if r := h.do("POST", "/template-terms", map[string]any{"id": "t", "name": "T"}); r.status != 201 {
		t.Fatal(r.status, string(r.body))
	}
	head := h.head()
	for _, tc := range []struct {
		name, method, path string
		body               any
		headers            []string
		want               int
	}{
		{name: "X-Actor over 200 characters was silently dropped", method: "POST", path: "/groups", body: map[string]any{"name": "G"},
			headers: []string{"X-Actor", strings.Repeat("u", 201)}, want: 422},
		{name: "X-Actor with a control character", method: "POST", path: "/groups", body: map[string]any{"name": "G"},
			headers: []string{"X-Actor", "a\tb"}, want: 422},
		{name: "an X-Actor posing as another key's user", method: "POST", path: "/groups", body: map[string]any{"name": "G"},
			headers: []string{"X-Actor", "x via apikey:deadbeef0000"}, want: 422},
		{name: "an as_of offset of 24 hours", method: "GET", path: "/partners/a?as_of=2026-12-07T23:12:29%2B24:00", want: 400},
		{name: "an empty Idempotency-Key was taken as none", method: "POST", path: "/groups", body: map[string]any{"name": "G"},
			headers: []string{"Idempotency-Key", " "}, want: 400},
		{name: "a null body was taken as {}", method: "POST", path: "/template-terms/t/archive", body: "null", want: 400},
		{name: "limit given twice, the first empty", method: "GET", path: "/template-terms?limit=&limit=z", want: 400},
		{name: "an empty limit", method: "GET", path: "/partners?limit=", want: 400},
		{name: "an empty as_of was read as now", method: "GET", path: "/partners/a?as_of=", want: 400},
	} {
		if r := h.do(tc.method, tc.path, tc.body, tc.headers...); r.status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.want)
		}
	}
	if h.head() != head {
		t.Fatal("a refused request appended events")
	}
	// A long or unprintable X-Request-ID is replaced, not echoed.
	r := h.do("GET", "/groups", nil, "X-Request-ID", strings.Repeat("r", 201))
	if id := r.header.Get("X-Request-ID"); r.status != 200 || len(id) != 36 {
		t.Fatalf("long request ID: %d, echoed %q", r.status, id)
	}
	// A partner without notes lists an empty array, not null.
	if r := h.do("GET", "/partners/a/notes", nil); r.status != 200 || !strings.Contains(string(r.body), `"items":[]`) {
		t.Fatalf("notes of a partner without any: %d %s", r.status, r.body)
	}
}
