package projections_test

import (
	"context"
	"strings"
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
// state) is neither dropped nor appended: the drain fails loudly.
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
	rdb.RPush(ctx, out.Outbox(), entry("1", "enter", "p9", "c9"))
	if _, err := o.Drain(ctx, "acme", 100); err == nil || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("diverging entry: %v", err)
	}
	if l, _ := rdb.LLen(ctx, out.Outbox()).Result(); l != 1 || count() != 3 {
		t.Fatalf("diverging entry was dropped or appended: outbox %d, %d events", l, count())
	}
}
