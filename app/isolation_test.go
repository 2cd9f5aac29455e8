package app_test

import (
	"strings"
	"testing"
)

// Every route under a program, taken from the router itself (so a new
// route cannot be forgotten), answers 401 without a valid key and 404 with
// another program's key, exactly as for a program that does not exist, and
// never touches the other program.
func TestEveryProgramRouteIsIsolated(t *testing.T) {
	h := start(t, config(t, ""))
	if r := h.do("POST", "/partners", map[string]any{"partner_id": "secret", "name": "S", "relationship_type": "direct"}); r.status != 201 {
		t.Fatal(r.status)
	}
	_, otherKey, err := h.app.Commands.CreateProgram.Handle(t.Context(), createProgram("globex"), meta())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.WaitCaughtUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	head := h.head()
	routes := 0
	for _, rt := range h.app.HTTP.Routes() {
		if !strings.HasPrefix(rt.Path, "/v1/programs/:program") {
			continue
		}
		routes++
		path := strings.NewReplacer(":program", "acme", ":id", "secret", ":name", "x", ":other", "x").Replace(rt.Path)
		body := `{"name":"Hijack","relationship_type":"direct"}`
		for _, tc := range []struct {
			who  string
			auth string
			want int
		}{
			{who: "no key", auth: "", want: 401},
			{who: "a bad key", auth: "Bearer not-a-key-at-all-0000", want: 401},
			{who: "another program's key", auth: "Bearer " + otherKey, want: 404},
		} {
			r := h.do(rt.Method, h.srv.URL+path, body, "Authorization", tc.auth)
			if r.status != tc.want {
				t.Errorf("%s %s with %s: %d, want %d: %s", rt.Method, path, tc.who, r.status, tc.want, r.body)
			}
			if strings.Contains(string(r.body), "secret") {
				t.Errorf("%s %s with %s leaked data: %s", rt.Method, path, tc.who, r.body)
			}
		}
		// The same path on a program that does not exist, with a valid key.
		missing := strings.Replace(path, "/acme", "/nosuch", 1)
		if r := h.do(rt.Method, h.srv.URL+missing, body); r.status != 404 {
			t.Errorf("%s %s: %d, want 404", rt.Method, missing, r.status)
		}
	}
	if routes < 5 {
		t.Fatalf("only %d program routes found in the router", routes)
	}
	if h.head() != head {
		t.Fatal("a request without a valid key of the program appended events")
	}
}
