package app_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/eventstore"
)

// Until the read models hold the log as it was at start, /readyz is 503,
// an API key the programs read model does not know yet is a 503 with
// Retry-After, not a 401 (with the embedded Redis every start rebuilds
// them, keys included), and so is a query of the read models, which would
// show only part of them; commands and histories are served. Once they
// reached it, it stays so.
func TestNotReadyUntilTheLogAtStartIsProjected(t *testing.T) {
	h := start(t, config(t, ""))
	h.mustCreate("/partners", map[string]any{"partner_id": "s1", "name": "S", "relationship_type": "direct"})
	h.caughtUp()
	if code, body := h.readyz(); code != 200 {
		t.Fatalf("readyz once caught up: %d %s", code, body)
	}
	h.app.PretendStartedAt(eventstore.Position(h.head() + 1000))
	code, body := h.readyz()
	if code != 503 || !strings.Contains(body, "when partnerd started") {
		t.Fatalf("readyz before the log at start is projected: %d %s", code, body)
	}
	r := h.do("GET", "/partners", nil, "Authorization", "Bearer not-projected-yet-0123456789")
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("an unknown key while starting up: %d %s", r.status, r.body)
	}
	// A known key's query of the read models is a 503 too (they hold only
	// part of the log), while a history, read from the log, is answered.
	if r := h.do("GET", "/partners", nil); r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("a query while starting up: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/partners/s1/history", nil); r.status != 200 {
		t.Fatalf("a history while starting up: %d %s", r.status, r.body)
	}
	h.app.PretendStartedAt(eventstore.Position(h.head()))
	if code, body := h.readyz(); code != 200 {
		t.Fatalf("readyz once the log at start is projected: %d %s", code, body)
	}
	if r := h.do("GET", "/partners", nil); r.status != 200 {
		t.Fatalf("a query once started: %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/partners", nil, "Authorization", "Bearer not-projected-yet-0123456789"); r.status != 401 {
		t.Fatalf("an unknown key once started: %d %s", r.status, r.body)
	}
}

func (h *harness) readyz() (int, string) {
	r := h.do("GET", h.srv.URL+"/readyz", nil)
	return r.status, string(r.body)
}

// Bootstrap returns (and serve starts listening) only once the new
// program's key is projected: the first request with it is not a 401.
func TestBootstrapKeyWorksWhenBootstrapReturns(t *testing.T) {
	cfg := config(t, "")
	cfg.BootstrapKey = "boot-key-0123456789abcdef"
	a, err := app.New(cfg, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, created, err := a.Bootstrap(t.Context()); err != nil || !created {
		t.Fatalf("bootstrap: created %v, %v", created, err)
	}
	if p, err := a.Queries.ProgramOfKey(t.Context(), commands.HashAPIKey(cfg.BootstrapKey)); err != nil || p != cfg.BootstrapProgram {
		t.Fatalf("the key right after Bootstrap belongs to %q (%v), want %q", p, err, cfg.BootstrapProgram)
	}
}

// A restart whose bootstrap key is not a key of the existing bootstrap
// program says so (every request with it would be a 401), and one with
// the program's own key says nothing; another program's key is refused.
func TestBootstrapWarnsOfAKeyTheProgramDoesNotHave(t *testing.T) {
	cfg := config(t, "")
	cfg.BootstrapKey = "boot-key-0123456789abcdef"
	boot := func(cfg app.Config) (string, error) {
		t.Helper()
		var logs bytes.Buffer
		a, err := app.New(cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if err := a.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, _, err = a.Bootstrap(t.Context())
		return logs.String(), err
	}
	if _, err := boot(cfg); err != nil {
		t.Fatal(err)
	}
	if logs, err := boot(cfg); err != nil || strings.Contains(logs, "bootstrap key") {
		t.Fatalf("a restart with the program's own key: %v, logs %q", err, logs)
	}
	other := cfg
	other.BootstrapKey = "another-key-0123456789"
	if logs, err := boot(other); err != nil || !strings.Contains(logs, "bootstrap key is not a live key") {
		t.Fatalf("a restart with a key the program does not have: %v, logs %q", err, logs)
	}
	// The first program's key for a new bootstrap program: refused.
	moved := cfg
	moved.BootstrapProgram = "other"
	if _, err := boot(moved); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("another program with acme's key: %v", err)
	}
}
