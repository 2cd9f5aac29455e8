package app_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAccessLinkOverHTTP(t *testing.T) {
	h := start(t, config(t, ""))
	h.mustCreate("/partners", map[string]any{"partner_id": "direct", "name": "Direct", "relationship_type": "direct", "signup_source": "direct_link"})
	h.mustCreate("/partners", map[string]any{"partner_id": "market", "name": "Market", "relationship_type": "marketplace", "signup_source": "marketplace"})
	h.mustCreate("/partners", map[string]any{"partner_id": "unknown", "name": "Unknown", "relationship_type": "direct"})

	// Only a partner who joined only through a direct sign-up link.
	for _, id := range []string{"market", "unknown"} {
		r := h.do("POST", "/partners/"+id+"/access-link", nil)
		h.problem(r, 409)
		if d := r.json(t)["detail"].(string); !strings.Contains(d, "direct sign-up link") {
			t.Fatalf("409 detail for %s = %q", id, d)
		}
	}
	if got := h.stored("direct").SignupSource; got != "direct_link" {
		t.Fatalf("stored signup source = %q", got)
	}
	h.problem(h.do("PATCH", "/partners/market", map[string]any{"signup_source": "direct_link"}), 422, "signup_source")
	h.problem(h.do("POST", "/partners", map[string]any{"name": "X", "relationship_type": "direct", "signup_source": "flyer"}), 422, "signup_source")

	before := time.Now()
	r := h.expect(201, "POST", "/partners/direct/access-link", nil)
	link := r.json(t)
	token := link["token"].(string)
	expires, err := time.Parse(time.RFC3339, link["expires_at"].(string))
	if err != nil || expires.Before(before.Add(14*time.Minute)) || expires.After(time.Now().Add(15*time.Minute)) {
		t.Fatalf("expires_at = %v (%v), want in 15 minutes", link["expires_at"], err)
	}
	if !strings.HasSuffix(link["url"].(string), "?token="+token) || link["partner_id"] != "direct" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("access link answer = %s", r.body)
	}
	hist := h.expect(200, "GET", "/partners/direct/history", nil)
	if strings.Contains(string(hist.body), token) || !strings.Contains(string(hist.body), "partner.access_link_issued") {
		t.Fatalf("history holds the token or lacks the issue: %s", hist.body)
	}

	// A tampered token is refused, whatever was changed.
	payload, mac, _ := strings.Cut(token, ".")
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	for _, bad := range []string{flip(payload, 3) + "." + mac, payload + "." + flip(mac, 5), payload, "x.y", token + "x"} {
		h.problem(h.do("POST", "/access-links/redeem", map[string]any{"token": bad}), 422, "token")
	}
	h.problem(h.do("POST", "/access-links/redeem", map[string]any{}), 422, "token")

	red := h.expect(200, "POST", "/access-links/redeem", map[string]any{"token": token}).json(t)
	if red["partner_id"] != "direct" || red["link_id"] != link["link_id"] {
		t.Fatalf("redemption = %v", red)
	}
	again := h.do("POST", "/access-links/redeem", map[string]any{"token": token})
	h.problem(again, 409)
	if d := again.json(t)["detail"].(string); !strings.Contains(d, "already used") {
		t.Fatalf("second redeem detail = %q", d)
	}

	// A short-lived link expires.
	short := h.expect(201, "POST", "/partners/direct/access-link", map[string]any{"ttl_seconds": 1}).json(t)
	at, _ := time.Parse(time.RFC3339, short["expires_at"].(string))
	time.Sleep(time.Until(at) + 100*time.Millisecond)
	late := h.do("POST", "/access-links/redeem", map[string]any{"token": short["token"]})
	h.problem(late, 409)
	if d := late.json(t)["detail"].(string); !strings.Contains(d, "expired") {
		t.Fatalf("expired link detail = %q", d)
	}
	h.problem(h.do("POST", "/partners/direct/access-link", map[string]any{"ttl_seconds": 0}), 422, "ttl_seconds")
	h.problem(h.do("POST", "/partners/direct/access-link", map[string]any{"ttl_seconds": 901}), 422, "ttl_seconds")
	h.problem(h.do("POST", "/partners/nosuch/access-link", nil), 404)

	// A link stops qualifying when the partner moves to the marketplace.
	pending := h.expect(201, "POST", "/partners/direct/access-link", nil).json(t)
	h.expect(200, "PATCH", "/partners/direct", map[string]any{"relationship_type": "marketplace"})
	h.problem(h.do("POST", "/access-links/redeem", map[string]any{"token": pending["token"]}), 409)
}

// The token is shown once and never stored: a replay by Idempotency-Key
// names the link it issued, without the token, and the idempotency store
// (which keeps answers 24 h, here on disk) never holds it. It did.
func TestAccessLinkReplayHoldsNoToken(t *testing.T) {
	cfg := config(t, "")
	h := start(t, cfg)
	h.mustCreate("/partners", map[string]any{"partner_id": "direct", "name": "Direct", "relationship_type": "direct", "signup_source": "direct_link"})
	first := h.expect(201, "POST", "/partners/direct/access-link", nil, "Idempotency-Key", "link-once").json(t)
	token, _ := first["token"].(string)
	if token == "" || first["url"] == nil {
		t.Fatalf("first answer = %v", first)
	}
	replay := h.expect(201, "POST", "/partners/direct/access-link", nil, "Idempotency-Key", "link-once")
	again := replay.json(t)
	if replay.header.Get("Idempotent-Replayed") != "true" || again["link_id"] != first["link_id"] || again["expires_at"] != first["expires_at"] {
		t.Fatalf("replay = %v, first %v", again, first)
	}
	if _, ok := again["token"]; ok || again["url"] != nil || strings.Contains(string(replay.body), token) {
		t.Fatalf("the replay shows the token again: %s", replay.body)
	}
	err := filepath.WalkDir(cfg.Data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(token)) {
			return fmt.Errorf("%s holds the token", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The link still works, once.
	h.expect(200, "POST", "/access-links/redeem", map[string]any{"token": token})
}
