package app_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
)

// A proposal whose deadline passes becomes pending_contract_expired through
// a real event appended by the scheduler, visible in history.
func TestSchedulerExpiresProposals(t *testing.T) {
	h := start(t, config(t, ""))
	if r := h.do("POST", "/partners", map[string]any{"partner_id": "late", "name": "L", "relationship_type": "direct"}); r.status != 201 {
		t.Fatal(r.status)
	}
	ctx := context.Background()
	stream := domain.PartnerStream("acme", "late")
	p, version, _, err := commands.Load[domain.Partner](ctx, h.app.Store, stream)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	evs, err := p.Propose(domain.SideAdvertiser, "gold", time.Time{}, time.Time{}, now.Add(1500*time.Millisecond), now)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(evs[0])
	if _, err := h.app.Store.Append(ctx, stream, version, []eventstore.EventData{{ID: uuid.NewString(), Type: evs[0].EventType(),
		Data: data, Metadata: []byte(`{"schema":1,"program":"acme","actor":"test"}`)}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := h.do("GET", "/partners/late", nil).json(t)
		if c, ok := g["contract"].(map[string]any); ok && c["stage"] == string(domain.StagePendingContractExpired) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proposal did not expire: %v", g["contract"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	items := h.do("GET", "/partners/late/history", nil).json(t)["items"].([]any)
	last := items[len(items)-1].(map[string]any)
	if last["type"] != "partner.contract_proposal_expired" || last["actor"] != "system:scheduler" {
		t.Fatalf("last history entry = %v", last)
	}
	if time.Since(now) < 1500*time.Millisecond {
		t.Fatal("expired before its deadline")
	}
}
