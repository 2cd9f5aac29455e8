package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/partnerd/partnerd/internal/testenv"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /healthz says the process is up; /readyz also needs the store and Redis
// and turns 503 when Redis goes away; /metrics exposes partnerd's gauges.
func TestOperationsEndpoints(t *testing.T) {
	_, srv := testenv.MiniredisServer(t) // a Redis this test may take down
	h := start(t, config(t, "redis://"+srv.Addr()+"/0"))
	if code, body := get(t, h.srv.URL+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body := get(t, h.srv.URL+"/readyz"); code != 200 || !strings.Contains(body, `"redis":"ok"`) {
		t.Fatalf("readyz while all is well: %d %s", code, body)
	}
	h.do("POST", "/partners", map[string]any{"partner_id": "m", "name": "M", "relationship_type": "direct"})
	code, body := get(t, h.srv.URL+"/metrics")
	for _, m := range []string{"partnerd_log_head_position", "partnerd_relay_position", `partnerd_projection_checkpoint{projection="partners"}`,
		`partnerd_http_request_duration_seconds_count{method="POST",route="/v1/programs/:program/partners",status="201"}`} {
		if code != 200 || !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	srv.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, h.srv.URL+"/readyz")
		if code == 503 && strings.Contains(body, `"status":"not ready"`) && !strings.Contains(body, `"redis":"ok"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz with Redis down: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := get(t, h.srv.URL+"/healthz"); code != 200 {
		t.Fatalf("healthz must not depend on Redis: %d", code)
	}
}
