package commands_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

func snapJSON(t *testing.T, p *domain.Partner) string {
	t.Helper()
	b, err := json.Marshal(p.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A partner loaded from a snapshot plus the events after it is exactly the
// partner folded from the whole stream; snapshots that do not belong to
// this log or this build are ignored and replaced.
func TestLoadPartnerFromSnapshotEqualsTheFold(t *testing.T) {
	ctx := context.Background()
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stream := longPartner(t, store, 1300)
	full, version, _, err := commands.Load[domain.Partner](ctx, store, stream)
	if err != nil || version != 1299 {
		t.Fatalf("fold: %d %v", version, err)
	}
	want := snapJSON(t, full)
	if !strings.Contains(want, `"notes"`) || !strings.Contains(want, `"contract"`) {
		t.Fatalf("the stream does not exercise notes and contracts: %.200s", want)
	}

	snaps := &memSnapshots{}
	p, v, _, err := commands.LoadPartner(ctx, store, snaps, 500, stream)
	if err != nil || v != 1299 || snapJSON(t, p) != want || snaps.puts != 1 {
		t.Fatalf("first load: version %d, %d puts, %v", v, snaps.puts, err)
	}
	// From the snapshot (no new events: nothing folded, no new snapshot).
	p, v, _, err = commands.LoadPartner(ctx, store, snaps, 500, stream)
	if err != nil || v != 1299 || snapJSON(t, p) != want || snaps.puts != 1 {
		t.Fatalf("from the snapshot: version %d, %d puts, %v", v, snaps.puts, err)
	}
	// Snapshots at every point of a shorter copy of the stream, then the rest.
	for _, cutAt := range []int{1, 2, 3, 7, 250, 999, 1298} {
		cut, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := store.ReadStream(ctx, stream, 0, eventstore.Forwards, cutAt)
		for _, e := range evs {
			if _, err := cut.Append(ctx, stream, eventstore.Any, []eventstore.EventData{{ID: e.ID, Type: e.Type, Data: e.Data, Metadata: e.Metadata}}); err != nil {
				t.Fatal(err)
			}
		}
		s := &memSnapshots{}
		if _, _, _, err := commands.LoadPartner(ctx, cut, s, 1, stream); err != nil || s.puts != 1 {
			t.Fatalf("snapshot at %d: %v", cutAt, err)
		}
		_ = cut.Close()
		p, v, _, err := commands.LoadPartner(ctx, store, s, 1_000_000, stream)
		if err != nil || v != 1299 {
			t.Fatalf("from the snapshot at %d: %d %v", cutAt, v, err)
		}
		if got := snapJSON(t, p); got != want {
			t.Fatalf("snapshot at %d + the rest differs from the fold:\n%.400s\n%.400s", cutAt, got, want)
		}
	}
	// A snapshot of another log (same stream name, other events) is ignored.
	other, _ := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	longPartner(t, other, 1400)
	foreign := &memSnapshots{}
	if _, _, _, err := commands.LoadPartner(ctx, other, foreign, 1, stream); err != nil {
		t.Fatal(err)
	}
	_ = other.Close()
	p, v, _, err = commands.LoadPartner(ctx, store, foreign, 500, stream)
	if err != nil || v != 1299 || snapJSON(t, p) != want {
		t.Fatalf("with a foreign snapshot: version %d, %v", v, err)
	}
	// A snapshot of another build (another fingerprint) is ignored too.
	var s map[string]any
	_ = json.Unmarshal(snaps.m[stream], &s)
	s["schema"] = "an older build"
	s["partner"].(map[string]any)["state"].(map[string]any)["profile"].(map[string]any)["name"] = "Wrong"
	snaps.m[stream], _ = json.Marshal(s)
	if p, _, _, err = commands.LoadPartner(ctx, store, snaps, 500, stream); err != nil || snapJSON(t, p) != want {
		t.Fatalf("with a snapshot of another build: %v", err)
	}
}

// A load that cannot gain from a snapshot does not ask the snapshot store:
// a create (no stream yet) and a short stream fold from the log alone,
// while a long stream still starts from its snapshot.
func TestLoadPartnerAsksForSnapshotsOnlyForLongStreams(t *testing.T) {
	ctx := context.Background()
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snaps := &memSnapshots{}
	p, v, _, err := commands.LoadPartner(ctx, store, snaps, 500, domain.PartnerStream("acme", "nobody"))
	if err != nil || v != -1 || p == nil || p.State().PartnerID != "" || snaps.gets != 0 {
		t.Fatalf("missing stream: version %d, %d gets, %v", v, snaps.gets, err)
	}
	short, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	stream := longPartner(t, short, 40)
	full, _, _, _ := commands.Load[domain.Partner](ctx, short, stream)
	// Even a snapshot that is there (taken with every = 1) is not asked for.
	if _, _, _, err := commands.LoadPartner(ctx, short, snaps, 1, stream); err != nil || snaps.puts != 1 {
		t.Fatalf("snapshot with every=1: %d puts, %v", snaps.puts, err)
	}
	snaps.gets = 0
	p, v, _, err = commands.LoadPartner(ctx, short, snaps, 500, stream)
	if err != nil || v != 39 || snapJSON(t, p) != snapJSON(t, full) || snaps.gets != 0 {
		t.Fatalf("short stream: version %d, %d gets, %v", v, snaps.gets, err)
	}
	stream = longPartner(t, store, 1300)
	if _, _, _, err := commands.LoadPartner(ctx, store, snaps, 500, stream); err != nil || snaps.gets != 1 || snaps.puts != 2 {
		t.Fatalf("long stream: %d gets, %d puts, %v", snaps.gets, snaps.puts, err)
	}
}

// With the embedded store as its own snapshot store (as the app wires it),
// a load of a long stream leaves a snapshot beside the log, the next load
// starts from it, and the log is unchanged.
func TestLoadPartnerWithTheStoresSnapshots(t *testing.T) {
	ctx := context.Background()
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stream := longPartner(t, store, 1300)
	full, _, _, _ := commands.Load[domain.Partner](ctx, store, stream)
	head, _ := store.Head(ctx)
	p, v, _, err := commands.LoadPartner(ctx, store, store, 500, stream)
	if err != nil || v != 1299 || snapJSON(t, p) != snapJSON(t, full) {
		t.Fatalf("first load: version %d, %v", v, err)
	}
	raw, err := store.ReadSnapshot(ctx, stream)
	if err != nil || !strings.Contains(string(raw), `"version":1300,`) {
		t.Fatalf("snapshot in the store: %v %.100s", err, raw)
	}
	if h, _ := store.Head(ctx); h != head {
		t.Fatalf("head moved from %d to %d: a snapshot is not part of the log", head, h)
	}
	// Tamper with the stored snapshot's state (keeping its event ID and
	// fingerprint): a load from it shows the snapshot was used.
	var s map[string]any
	_ = json.Unmarshal(raw, &s)
	s["partner"].(map[string]any)["state"].(map[string]any)["profile"].(map[string]any)["name"] = "From the snapshot"
	raw, _ = json.Marshal(s)
	if err := store.WriteSnapshot(ctx, stream, raw); err != nil {
		t.Fatal(err)
	}
	p, v, _, err = commands.LoadPartner(ctx, store, store, 500, stream)
	if err != nil || v != 1299 || p.State().Profile.Name != "From the snapshot" {
		t.Fatalf("second load: version %d, name %q, %v; want it from the snapshot", v, p.State().Profile.Name, err)
	}
}
