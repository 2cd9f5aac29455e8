package projections_test

import (
	"context"
	"testing"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/internal/testenv"
	"github.com/partnerd/partnerd/projections"
)

// TestSegmentOutboxDrain: an entry is appended once at its seq; the same
// entry drained again (a crash before the trim) is dropped as done; an
// entry whose seq is taken by a different event (Redis lost the outbox
// state) is neither dropped as done nor appended: the segment's state is
// restored from the log.
func TestSegmentOutboxDrain(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Miniredis(t)
	store, err := embedded.Open(t.TempDir(), embedded.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	o := &projections.SegmentOutbox{Redis: rdb, Store: store}
	out := projections.SegmentOutKeys("acme")
	entry := func(seq, action, partner, cause string) string {
		return seq + "|" + action + `|{"segment_id":"s","partner_id":"` + partner + `","causation_event_id":"` + cause + `","at":"2026-01-01T00:00:00Z"}`
	}
	stream := domain.SegmentMembersStream("acme", "s")
	count := func() int {
		evs, err := store.ReadStream(ctx, stream, 0, eventstore.Forwards, 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	rdb.RPush(ctx, out.Outbox(), entry("1", "enter", "p1", "c1"), entry("2", "leave", "p1", "c2"))
	if n, err := o.Drain(ctx, "acme", 100); err != nil || n != 2 || count() != 2 {
		t.Fatalf("first drain: %d %v, %d events", n, err, count())
	}
	rdb.RPush(ctx, out.Outbox(), entry("2", "leave", "p1", "c2"), entry("3", "enter", "p1", "c3"))
	if n, err := o.Drain(ctx, "acme", 100); err != nil || n != 2 || count() != 3 {
		t.Fatalf("repeated drain: %d %v, %d events", n, err, count())
	}
	// Redis lost the outbox state: seq restarted, so seq 1 is taken by a
	// different event. The entry is neither appended nor dropped as done;
	// the segment's announced set and seq are restored from its stream
	// and its entries discarded (the rebuild's Reconcile announces the
	// difference); another segment's entries stay, in order.
	other := func(seq, partner string) string {
		return seq + "|enter|" + `{"segment_id":"t","partner_id":"` + partner + `","causation_event_id":"c","at":"2026-01-01T00:00:00Z"}`
	}
	rdb.Set(ctx, out.Seq("s"), 1, 0)
	rdb.SAdd(ctx, out.Announced("s"), "p9")
	rdb.RPush(ctx, out.Outbox(), other("1", "q1"), entry("1", "enter", "p9", "c9"), other("2", "q2"))
	if n, err := o.Drain(ctx, "acme", 100); err != nil || n != 0 {
		t.Fatalf("diverging entry: %d %v", n, err)
	}
	if count() != 3 {
		t.Fatalf("diverging entry was appended: %d events", count())
	}
	if l, _ := rdb.LRange(ctx, out.Outbox(), 0, -1).Result(); len(l) != 2 || l[0] != other("1", "q1") || l[1] != other("2", "q2") {
		t.Fatalf("outbox after the restore: %q", l)
	}
	// p1 entered, left and entered again: announced {p1}, three events.
	if m, _ := rdb.SMembers(ctx, out.Announced("s")).Result(); len(m) != 1 || m[0] != "p1" {
		t.Fatalf("announced after the restore: %v", m)
	}
	if v, _ := rdb.Get(ctx, out.Seq("s")).Result(); v != "3" {
		t.Fatalf("seq after the restore: %q", v)
	}
	// The other segment drains, and s carries on from seq 4.
	rdb.RPush(ctx, out.Outbox(), entry("4", "leave", "p1", "c4"))
	if n, err := o.Drain(ctx, "acme", 100); err != nil || n != 3 || count() != 4 {
		t.Fatalf("drain after the restore: %d %v, %d events", n, err, count())
	}
	if evs, _ := store.ReadStream(ctx, domain.SegmentMembersStream("acme", "t"), 0, eventstore.Forwards, 10); len(evs) != 2 {
		t.Fatalf("segment t: %d events", len(evs))
	}
}
