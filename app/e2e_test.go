package app_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/app"
)

// backends runs f on the embedded Redis and on real Redis.
func backends(t *testing.T, db int, f func(t *testing.T, h *harness)) {
	backendsWith(t, db, func(*app.Config) {}, f)
}

// backendsWith is backends with the config edited first.
func backendsWith(t *testing.T, db int, edit func(*app.Config), f func(t *testing.T, h *harness)) {
	for _, real := range []bool{false, true} {
		name := "embedded redis"
		if real {
			name = "real redis"
		}
		t.Run(name, func(t *testing.T) {
			url := ""
			if real {
				url = redisDB(t, db)
			}
			c := config(t, url)
			edit(&c)
			f(t, start(t, c))
		})
	}
}

func TestCommandTravelsToQuery(t *testing.T) {
	backends(t, dbEndToEnd, func(t *testing.T, h *harness) {
		r := h.do("POST", "/partners", map[string]any{"partner_id": "blog-1", "name": "Acme Blog", "url": "https://blog.example",
			"relationship_type": "direct", "country": "de", "email": "editor@blog.example", "social_reach": 1200},
			"X-Request-ID", "req-create-1", "X-Actor", "jane@brand.example")
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		created := r.json(t)
		if created["partner_id"] != "blog-1" || created["country"] != "DE" || created["version"] != 1.0 || created["position"] == "" {
			t.Fatalf("create answer = %v", created)
		}
		tok := r.header.Get("X-Consistency-Token")
		if tok == "" || tok != created["consistency_token"] || r.header.Get("X-Position") != created["position"] {
			t.Fatalf("token/position headers %q %q do not match the body %v", tok, r.header.Get("X-Position"), created)
		}
		// Read-your-writes through the whole pipeline.
		g := h.do("GET", "/partners/blog-1", nil, "X-Consistency-Token", tok)
		if g.status != 200 {
			t.Fatalf("get with token: %d %s", g.status, g.body)
		}
		got := g.json(t)
		for _, f := range []string{"partner_id", "name", "url", "country", "email", "version", "relationship_type", "prospect_stage"} {
			if fmt.Sprint(got[f]) != fmt.Sprint(created[f]) {
				t.Errorf("read model %s = %v, command answer %v", f, got[f], created[f])
			}
		}
		if _, ok := got["contract"]; !ok || got["contract"] != nil {
			t.Errorf("contract = %v, want present and null", got["contract"])
		}

		// A stale If-Match is a conflict and appends nothing.
		before := h.head()
		if r := h.do("PATCH", "/partners/blog-1", map[string]any{"name": "X"}, "If-Match", "7"); r.status != 409 {
			t.Fatalf("stale If-Match: %d %s", r.status, r.body)
		}
		if h.head() != before {
			t.Fatal("a rejected PATCH appended events")
		}
		time.Sleep(5 * time.Millisecond)
		beforeUpdate := time.Now().UTC()
		time.Sleep(5 * time.Millisecond)
		u := h.do("PATCH", "/partners/blog-1", map[string]any{"name": "Acme Journal", "url": nil}, "If-Match", "1")
		if u.status != 200 || u.json(t)["version"] != 2.0 || u.json(t)["name"] != "Acme Journal" {
			t.Fatalf("patch: %d %s", u.status, u.body)
		}
		if _, hasURL := u.json(t)["url"]; hasURL {
			t.Fatalf("url set to null should be cleared: %s", u.body)
		}
		g = h.do("GET", "/partners/blog-1", nil, "X-Consistency-Token", u.header.Get("X-Consistency-Token"))
		if g.json(t)["name"] != "Acme Journal" {
			t.Fatalf("read model after patch: %s", g.body)
		}
		// The list, its total and paging.
		for i := 0; i < 4; i++ {
			h.do("POST", "/partners", map[string]any{"partner_id": fmt.Sprintf("z-%d", i), "name": "Z", "relationship_type": "marketplace"})
		}
		h.do("POST", "/partners", map[string]any{"partner_id": "z-9", "name": "Z", "relationship_type": "marketplace"})
		// A token covers its own write only (other partners may sit in other
		// partitions), so wait for the whole log before counting.
		if err := h.app.WaitCaughtUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		l := h.do("GET", "/partners?limit=3", nil)
		page := l.json(t)
		next, _ := page["next_cursor"].(string)
		if page["total"] != 6.0 || len(page["items"].([]any)) != 3 || next == "" {
			t.Fatalf("first page = %s", l.body)
		}
		l2 := h.do("GET", "/partners?limit=3&cursor="+next, nil).json(t)
		if len(l2["items"].([]any)) != 3 || l2["next_cursor"] != nil {
			t.Fatalf("second page = %v", l2)
		}
		// History: who, why, in order.
		hist := h.do("GET", "/partners/blog-1/history", nil).json(t)
		items := hist["items"].([]any)
		if len(items) != 2 || hist["total"] != 2.0 {
			t.Fatalf("history = %v", hist)
		}
		first := items[0].(map[string]any)
		if first["type"] != "partner.created" || first["version"] != 1.0 || first["correlation_id"] != "req-create-1" ||
			!strings.HasPrefix(first["actor"].(string), "user:jane@brand.example via apikey:") {
			t.Fatalf("first history entry = %v", first)
		}
		if items[1].(map[string]any)["type"] != "partner.profile_updated" {
			t.Fatalf("second history entry = %v", items[1])
		}
		// As of a moment before the update.
		old := h.do("GET", "/partners/blog-1?as_of="+beforeUpdate.Format(time.RFC3339Nano), nil)
		if old.status != 200 || old.json(t)["name"] != "Acme Blog" || old.json(t)["version"] != 1.0 {
			t.Fatalf("as_of: %d %s", old.status, old.body)
		}
	})
}

func TestAuthAndIsolation(t *testing.T) {
	h := start(t, config(t, ""))
	other := h.do("POST", h.srv.URL+"/v1/programs/acme/partners", map[string]any{"partner_id": "x", "name": "X", "relationship_type": "direct"})
	if other.status != 201 {
		t.Fatal(other.status)
	}
	// A second program with its own key.
	_, key2, err := h.app.Commands.CreateProgram.Handle(t.Context(), createProgram("globex"), meta())
	if err != nil {
		t.Fatal(err)
	}
	h.app.WaitCaughtUp(t.Context())
	cases := []struct {
		name, path, key string
		want            int
	}{
		{name: "no key", path: "/v1/programs/acme/partners", key: "", want: 401},
		{name: "unknown key", path: "/v1/programs/acme/partners", key: "nope-nope-nope-nope", want: 401},
		{name: "other program's key on a partner", path: "/v1/programs/acme/partners/x", key: key2, want: 404},
		{name: "other program's key on the list", path: "/v1/programs/acme/partners", key: key2, want: 404},
		{name: "missing program", path: "/v1/programs/nosuch/partners", key: h.key, want: 404},
		{name: "own key", path: "/v1/programs/globex/partners", key: key2, want: 200},
		{name: "own program, other's partner", path: "/v1/programs/globex/partners/x", key: key2, want: 404},
	}
	for _, tc := range cases {
		r := h.do("GET", h.srv.URL+tc.path, nil, "Authorization", bearer(tc.key))
		if r.status != tc.want {
			t.Errorf("%s: %d, want %d (%s)", tc.name, r.status, tc.want, r.body)
		}
		if r.status >= 400 && r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: content type %q, want problem+json", tc.name, r.header.Get("Content-Type"))
		}
	}
}

func bearer(key string) string {
	if key == "" {
		return ""
	}
	return "Bearer " + key
}

func TestBadInputChangesNothing(t *testing.T) {
	h := start(t, config(t, ""))
	head := h.head()
	cases := []struct {
		name   string
		body   any
		want   int
		fields []string
	}{
		{name: "malformed JSON", body: `{"name": `, want: 400},
		{name: "not an object", body: `[1,2]`, want: 400},
		{name: "two values", body: `{"name":"a","relationship_type":"direct"} {}`, want: 400},
		{name: "empty body", body: ``, want: 400},
		{name: "unknown field", body: map[string]any{"name": "A", "relationship_type": "direct", "colour": "red"}, want: 422, fields: []string{"colour"}},
		{name: "wrong type", body: map[string]any{"name": "A", "relationship_type": "direct", "social_reach": "many"}, want: 422, fields: []string{"social_reach"}},
		{name: "every bad field at once", body: map[string]any{"name": "", "relationship_type": "friend", "country": "XX", "email": "not-mail",
			"size": "huge", "moz_domain_authority": 101, "url": "ftp://x"}, want: 422,
			fields: []string{"name", "relationship_type", "country", "email", "size", "moz_domain_authority", "url"}},
		{name: "bad partner id", body: map[string]any{"partner_id": "a b", "name": "A", "relationship_type": "direct"}, want: 422, fields: []string{"partner_id"}},
		{name: "too large", body: `{"name":"` + strings.Repeat("a", 1<<20) + `"}`, want: 413},
	}
	for _, tc := range cases {
		r := h.do("POST", "/partners", tc.body)
		if r.status != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.name, r.status, tc.want, r.body)
			continue
		}
		p := r.json(t)
		if p["status"] != float64(tc.want) || p["title"] == "" || p["type"] == "" {
			t.Errorf("%s: not a problem document: %s", tc.name, r.body)
		}
		var got []string
		if errs, ok := p["errors"].([]any); ok {
			for _, e := range errs {
				got = append(got, e.(map[string]any)["field"].(string))
			}
		}
		for _, f := range tc.fields {
			if !slices.Contains(got, f) {
				t.Errorf("%s: errors %v do not name %s", tc.name, got, f)
			}
		}
	}
	if r := h.do("PATCH", "/partners/nobody", map[string]any{"name": "A"}); r.status != 404 {
		t.Errorf("patch of a missing partner: %d", r.status)
	}
	if r := h.do("GET", "/partners?limit=5000", nil); r.status != 422 {
		t.Errorf("limit 5000: %d", r.status)
	}
	if r := h.do("GET", "/partners?limit=abc", nil); r.status != 400 {
		t.Errorf("limit abc: %d", r.status)
	}
	if r := h.do("GET", "/partners/x?as_of=yesterday", nil); r.status != 400 {
		t.Errorf("as_of yesterday: %d", r.status)
	}
	if r := h.do("GET", "/partners/x", nil, "X-Consistency-Token", "!!"); r.status != 400 {
		t.Errorf("garbage consistency token: %d", r.status)
	}
	// A well-formed token naming a write the log never had is refused at
	// once (it waited for the wait limit, then answered 503).
	made := base64.RawURLEncoding.EncodeToString([]byte("partner-acme-zzz@99"))
	if r := h.do("GET", "/partners?limit=1", nil, "X-Consistency-Token", made); r.status != 400 {
		t.Errorf("a token of a write that never was: %d %s, want 400", r.status, r.body)
	}
	if h.head() != head {
		t.Fatalf("bad input appended events: head %d → %d", head, h.head())
	}
	dup := map[string]any{"partner_id": "dup", "name": "A", "relationship_type": "direct"}
	if r := h.do("POST", "/partners", dup); r.status != 201 {
		t.Fatal(r.status)
	}
	if r := h.do("POST", "/partners", dup); r.status != 409 {
		t.Fatalf("duplicate partner ID: %d", r.status)
	}
}

// With the embedded Redis (which starts empty) an Idempotency-Key still
// holds across a restart: its record is on disk, beside the log.
func TestIdempotencyKeyOutlivesARestart(t *testing.T) {
	cfg := config(t, "")
	h := start(t, cfg)
	body := map[string]any{"name": "Restarted", "relationship_type": "direct"} // server-assigned ID
	first := h.do("POST", "/partners", body, "Idempotency-Key", "restart-1")
	if first.status != 201 {
		t.Fatal(first.status, string(first.body))
	}
	h.stop()

	h = start(t, cfg)
	head := h.head()
	again := h.do("POST", "/partners", body, "Idempotency-Key", "restart-1")
	if again.status != 201 || string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after a restart = %d %s (replayed %q), want the first answer %s",
			again.status, again.body, again.header.Get("Idempotent-Replayed"), first.body)
	}
	if h.head() != head {
		t.Fatal("a replay after a restart appended events")
	}
	if r := h.do("POST", "/partners", map[string]any{"name": "Other", "relationship_type": "direct"}, "Idempotency-Key", "restart-1"); r.status != 422 {
		t.Fatalf("same key, other body, after a restart: %d %s", r.status, r.body)
	}
}

// A crash between a keyed command's append and the saving of its answer
// loses the record (here: deleted by hand). The retry then runs again, but
// finds its key in the stream: it appends nothing, and a partner created
// without an ID is the one the first attempt created.
func TestIdempotencyKeyWithoutItsRecordAppliesNothingTwice(t *testing.T) {
	h := start(t, config(t, ""))
	forget := func(key string) {
		t.Helper()
		sum := sha256.Sum256([]byte(key))
		if err := h.app.HTTP.Idempotency.Delete(t.Context(), "pd:idem:{acme}:"+hex.EncodeToString(sum[:])); err != nil {
			t.Fatal(err)
		}
	}
	body := map[string]any{"name": "Crashed", "relationship_type": "direct"}
	first := h.do("POST", "/partners", body, "Idempotency-Key", "crash-1")
	if first.status != 201 {
		t.Fatal(first.status, string(first.body))
	}
	id := first.json(t)["partner_id"].(string)
	note := h.do("POST", "/partners/"+id+"/notes", map[string]any{"text": "once"}, "Idempotency-Key", "crash-2")
	if note.status != 201 {
		t.Fatal(note.status, string(note.body))
	}
	forget("crash-1")
	forget("crash-2")
	head := h.head()
	again := h.do("POST", "/partners", body, "Idempotency-Key", "crash-1")
	if again.status != 201 || again.json(t)["partner_id"] != id {
		t.Fatalf("retry of the create: %d %s, want partner %s", again.status, again.body, id)
	}
	if r := h.do("POST", "/partners/"+id+"/notes", map[string]any{"text": "once"}, "Idempotency-Key", "crash-2"); r.status != 201 || string(r.body) != string(note.body) {
		t.Fatalf("retry of the note: %d %s, want the first answer %s", r.status, r.body, note.body)
	}
	if h.head() != head {
		t.Fatalf("retries without their records appended %d events", h.head()-head)
	}
	if notes := h.do("GET", "/partners/"+id+"/notes", nil).json(t); notes["total"] != 1.0 {
		t.Fatalf("notes after the retry: %v", notes)
	}
	// The same key with another body is another request: it applies.
	if r := h.do("POST", "/partners/"+id+"/notes", map[string]any{"text": "twice"}, "Idempotency-Key", "crash-3"); r.status != 201 || h.head() != head+1 {
		t.Fatalf("a new keyed note: %d %s", r.status, r.body)
	}
	// A retry answers what its first attempt did, not what later requests
	// made of the partner: its own note, the partner as that attempt left it.
	forget("crash-2")
	if r := h.do("POST", "/partners/"+id+"/notes", map[string]any{"text": "once"}, "Idempotency-Key", "crash-2"); r.status != 201 || string(r.body) != string(note.body) {
		t.Fatalf("retry of the first note after another: %d %s, want %s", r.status, r.body, note.body)
	}
	forget("crash-1")
	if again := h.do("POST", "/partners", body, "Idempotency-Key", "crash-1"); again.json(t)["version"] != first.json(t)["version"] || again.header.Get("ETag") != first.header.Get("ETag") {
		t.Fatalf("retry of the create after later writes: %s (ETag %s), want %s (ETag %s)", again.body, again.header.Get("ETag"), first.body, first.header.Get("ETag"))
	}
	hist := h.do("GET", "/partners/"+id+"/history", nil).json(t)["items"].([]any)
	if k, _ := hist[0].(map[string]any)["idempotency_key"].(string); !strings.HasPrefix(k, "crash-1#") {
		t.Fatalf("the creation's idempotency key = %q, want crash-1#<fingerprint>", k)
	}
	// A bulk action's retry reports the partners its first attempt changed
	// as it did then ("ok"), not as "unchanged".
	h.mustCreate("/partners", map[string]any{"partner_id": "other", "name": "Other", "relationship_type": "direct"})
	bulk := map[string]any{"partner_ids": []string{id, "other"}, "user": "ann"}
	b1 := h.do("POST", "/bulk/assigned-to", bulk, "Idempotency-Key", "crash-4")
	forget("crash-4")
	head = h.head()
	b2 := h.do("POST", "/bulk/assigned-to", bulk, "Idempotency-Key", "crash-4")
	if b1.status != 200 || b2.status != 200 || h.head() != head {
		t.Fatalf("bulk and its retry: %d %s / %d %s (%d events appended)", b1.status, b1.body, b2.status, b2.body, h.head()-head)
	}
	for _, r := range b2.json(t)["results"].([]any) {
		if st := r.(map[string]any)["status"]; st != "ok" {
			t.Errorf("retried bulk result %v, want ok as the first attempt answered (%s)", r, b1.body)
		}
	}
	// Activities without an activity_id: a retry finds the ones its first
	// attempt recorded (their IDs derive from the key), and a single one
	// answers as the first attempt did.
	one := map[string]any{"partner_id": id, "flavor": "logged_in"}
	single := h.do("POST", "/activities", one, "Idempotency-Key", "crash-6")
	batch := h.do("POST", "/activities", map[string]any{"activities": []any{one, map[string]any{"partner_id": id, "flavor": "link_clicked"}}}, "Idempotency-Key", "crash-7")
	if single.status != 202 || batch.status != 202 {
		t.Fatalf("keyed activities: %d %s, %d %s", single.status, single.body, batch.status, batch.body)
	}
	forget("crash-6")
	forget("crash-7")
	head = h.head()
	singleAgain := h.do("POST", "/activities", one, "Idempotency-Key", "crash-6")
	batchAgain := h.do("POST", "/activities", map[string]any{"activities": []any{one, map[string]any{"partner_id": id, "flavor": "link_clicked"}}}, "Idempotency-Key", "crash-7")
	if h.head() != head {
		t.Fatalf("retried activities appended %d events", h.head()-head)
	}
	s1, s2 := single.json(t), singleAgain.json(t)
	for _, f := range []string{"activity_id", "status", "occurred_at", "recorded_at", "position"} {
		if s1[f] != s2[f] {
			t.Errorf("single activity retry: %s = %v, first answered %v", f, s2[f], s1[f])
		}
	}
	r1, r2 := batch.json(t)["results"].([]any), batchAgain.json(t)["results"].([]any)
	for i := range r1 {
		if !reflect.DeepEqual(r1[i], r2[i]) {
			t.Errorf("batch retry result %d = %v, first answered %v", i, r2[i], r1[i])
		}
	}
}

// The same JSON object is the same request, however it is spaced or its
// keys ordered; repeats sent while the first one runs wait for its answer.
func TestIdempotencyKeyComparesContentAndWaitsForTheFirst(t *testing.T) {
	h := start(t, config(t, ""))
	first := h.do("POST", "/partners", `{"name":"Spaced","relationship_type":"direct","country":"DE"}`, "Idempotency-Key", "json-1")
	if first.status != 201 {
		t.Fatal(first.status, string(first.body))
	}
	head := h.head()
	again := h.do("POST", "/partners", "{\n  \"country\": \"DE\",\n  \"relationship_type\": \"direct\", \"name\": \"Spaced\"\n}\n", "Idempotency-Key", "json-1")
	if again.status != 201 || string(again.body) != string(first.body) {
		t.Fatalf("the same object respaced = %d %s, want the first answer", again.status, again.body)
	}
	if r := h.do("POST", "/partners", `{"name":"Spaced","relationship_type":"direct","country":"FR"}`, "Idempotency-Key", "json-1"); r.status != 422 {
		t.Fatalf("another value under the same key: %d %s", r.status, r.body)
	}
	if h.head() != head {
		t.Fatal("repeats appended events")
	}

	// The query is part of the request: another reason under the same key
	// is another request (it got the first answer back, the second unlink
	// never happening).
	h.mustCreate("/partners", map[string]any{"partner_id": "la", "name": "A", "relationship_type": "direct"})
	h.mustCreate("/partners", map[string]any{"partner_id": "lb", "name": "B", "relationship_type": "direct"})
	h.expect(200, "POST", "/partners/la/links", map[string]any{"partner_id": "lb", "reason": "same owner"})
	h.expect(200, "DELETE", "/partners/la/links/lb?reason=wrong-account", nil, "Idempotency-Key", "unlink-1")
	head = h.head()
	if r := h.do("DELETE", "/partners/la/links/lb?reason=wrong-account", nil, "Idempotency-Key", "unlink-1"); r.status != 200 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the same request again: %d %v", r.status, r.header)
	}
	if r := h.do("DELETE", "/partners/la/links/lb?reason=another", nil, "Idempotency-Key", "unlink-1"); r.status != 422 {
		t.Fatalf("another query under the same key: %d %s, want 422", r.status, r.body)
	}
	if h.head() != head {
		t.Fatal("repeats appended events")
	}

	// Concurrent repeats: one partner, every answer the same 201.
	const n = 8
	answers := make(chan response, n)
	for range n {
		go func() {
			answers <- h.do("POST", "/partners", map[string]any{"name": "Racing", "relationship_type": "direct"}, "Idempotency-Key", "race-1")
		}()
	}
	var want string
	for range n {
		r := <-answers
		if r.status != 201 {
			t.Fatalf("a concurrent repeat got %d %s, want the first answer", r.status, r.body)
		}
		if want == "" {
			want = string(r.body)
		} else if string(r.body) != want {
			t.Fatalf("concurrent repeats answered differently: %s vs %s", r.body, want)
		}
	}
	if got := h.head(); got != head+1 {
		t.Fatalf("concurrent repeats appended %d events, want 1", got-head)
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := start(t, config(t, ""))
	body := map[string]any{"name": "Once", "relationship_type": "direct"} // server-assigned ID
	first := h.do("POST", "/partners", body, "Idempotency-Key", "k-1")
	if first.status != 201 {
		t.Fatal(first.status, string(first.body))
	}
	head := h.head()
	again := h.do("POST", "/partners", body, "Idempotency-Key", "k-1")
	if again.status != 201 || string(again.body) != string(first.body) || again.header.Get("X-Position") != first.header.Get("X-Position") {
		t.Fatalf("replay = %d %s, want the first answer %s", again.status, again.body, first.body)
	}
	if h.head() != head {
		t.Fatal("a replayed request appended events")
	}
	other := h.do("POST", "/partners", map[string]any{"name": "Twice", "relationship_type": "direct"}, "Idempotency-Key", "k-1")
	if other.status != 422 {
		t.Fatalf("same key, other body: %d %s", other.status, other.body)
	}
	if r := h.do("POST", "/partners", body, "Idempotency-Key", "k-2"); r.status != 201 || r.json(t)["partner_id"] == first.json(t)["partner_id"] {
		t.Fatalf("a new key must make a new partner: %d %s", r.status, r.body)
	}
}
