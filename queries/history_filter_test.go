package queries_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/queries"
)

// historyStore is an embedded store (closed with the test) and commands
// on it, with the clock now.
func historyStore(t *testing.T, now func() time.Time) (*embedded.Store, *commands.Commands) {
	t.Helper()
	store, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store, commands.New(commands.Deps{Store: store, Now: now})
}

// since and until compare when an event took effect (occurred_at), as
// as_of does: a history between two times lists exactly what turns the
// state as of the first into the state as of the second, whenever the
// events were written (here the clock of the commands runs days ahead of
// the store's, as a scheduler catching up would write old due times).
func TestHistorySinceUntilCompareWhenEventsTookEffect(t *testing.T) {
	ctx := context.Background()
	base := time.Now().UTC().Add(10 * 24 * time.Hour).Truncate(time.Second)
	now := base
	store, cmds := historyStore(t, func() time.Time { return now })
	if _, _, err := cmds.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: "acme", PartnerID: "p",
		Profile: domain.Profile{Name: "P", RelationshipType: "direct"}}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"Q", "R"} {
		now = base.Add(time.Duration(i+1) * time.Hour)
		if _, _, err := cmds.UpdatePartner.Handle(ctx, "acme", "p", domain.Patch{"name": json.RawMessage(`"` + name + `"`)}, commands.Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	q := queries.New(nil, store, nil)
	names := func(f queries.HistoryFilter) []string {
		t.Helper()
		page, err := q.History(ctx, domain.CategoryPartner, "acme", "p", 0, 50, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range page.Items {
			var d struct{ Name string }
			_ = json.Unmarshal(it.Data, &d)
			out = append(out, d.Name)
		}
		return out
	}
	// Every event was recorded before base: by recorded_at, since=base
	// would list none of them.
	if got := names(queries.HistoryFilter{Since: base.Add(30 * time.Minute)}); len(got) != 2 || got[0] != "Q" || got[1] != "R" {
		t.Fatalf("since base+30m: %v, want [Q R]", got)
	}
	if got := names(queries.HistoryFilter{Since: base, Until: base.Add(90 * time.Minute)}); len(got) != 2 || got[0] != "P" || got[1] != "Q" {
		t.Fatalf("base to base+90m: %v, want [P Q]", got)
	}
	if got := names(queries.HistoryFilter{Until: base}); len(got) != 0 {
		t.Fatalf("until base: %v, want none", got)
	}
}

// An activity took effect when the partner did it. Its metadata says so
// since 2026-12-08; before, it held the recording time, and the history
// reads the activity's own occurred_at for those too.
func TestHistoryOfAnActivityFollowsItsOccurredAt(t *testing.T) {
	ctx := context.Background()
	store, cmds := historyStore(t, time.Now)
	if _, _, err := cmds.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: "acme", PartnerID: "p",
		Profile: domain.Profile{Name: "P", RelationshipType: "direct"}}, commands.Meta{}); err != nil {
		t.Fatal(err)
	}
	did := time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC)
	recorded := time.Now().UTC()
	old, _ := json.Marshal(commands.EventMeta{Schema: 1, Program: "acme", OccurredAt: recorded})
	data, _ := json.Marshal(domain.ActivityRecorded{ProgramID: "acme", RecordedAt: recorded,
		Activity: domain.Activity{ActivityID: "a1", PartnerID: "p", Flavor: "logged_in", OccurredAt: did}})
	if _, err := store.Append(ctx, domain.ActivityStream("acme", "p"), eventstore.Any, []eventstore.EventData{{ID: "11111111-1111-4111-8111-111111111111",
		Type: domain.TypeActivityRecorded, Data: data, Metadata: old}}); err != nil {
		t.Fatal(err)
	}
	q := queries.New(nil, store, nil)
	page, err := q.PartnerHistoryWithActivity(ctx, "acme", "p", "", 50, queries.HistoryFilter{Since: did, Until: did.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 1 || len(page.Items) != 1 || page.Items[0].Type != domain.TypeActivityRecorded || !page.Items[0].OccurredAt.Equal(did) {
		t.Fatalf("history of %s: %+v", did, page)
	}
}
