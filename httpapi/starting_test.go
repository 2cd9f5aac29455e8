package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/partnerd/partnerd/httpapi"
)

// While partnerd builds its read models at start, its address answers:
// the process is up, not ready, and every API route is a 503 problem.
func TestStartingAnswers(t *testing.T) {
	srv := httptest.NewServer(httpapi.Starting())
	defer srv.Close()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/v1/programs/demo/partners": 503, "/metrics": 503} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want || err != nil {
			t.Fatalf("GET %s: %d (%v), want %d", path, resp.StatusCode, err, want)
		}
		switch {
		case path == "/healthz" && body["status"] != "ok",
			path == "/readyz" && body["status"] != "not ready",
			want == 503 && path != "/readyz" && (resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("Retry-After") == "" || body["status"] != 503.0):
			t.Fatalf("GET %s: %v %v", path, resp.Header, body)
		}
	}
}
