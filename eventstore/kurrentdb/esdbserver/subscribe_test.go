package esdbserver_test

import (
	"fmt"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// next returns the next n events of sub, failing if it drops first.
func next(t *testing.T, sub *esdb.Subscription, n int) []*esdb.RecordedEvent {
	t.Helper()
	var out []*esdb.RecordedEvent
	for len(out) < n {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			t.Fatalf("subscription dropped after %d events: %v", len(out), ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			out = append(out, ev.EventAppeared.OriginalEvent())
		}
	}
	return out
}

func TestStreamSubscriptions(t *testing.T) {
	c, ctx := client(t)
	appendN(t, c, ctx, "s", 3)
	appendN(t, c, ctx, "other", 1)
	cases := []struct {
		from esdb.StreamPosition
		want []uint64
	}{
		{esdb.Start{}, []uint64{0, 1, 2, 3, 4}},
		{esdb.Revision(1), []uint64{2, 3, 4}}, // exclusive
		{esdb.End{}, []uint64{3, 4}},
	}
	subs := make([]*esdb.Subscription, len(cases))
	for i, tc := range cases {
		sub, err := c.SubscribeToStream(ctx, "s", esdb.SubscribeToStreamOptions{From: tc.from})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs[i] = sub
	}
	appendN(t, c, ctx, "other", 1)
	appendN(t, c, ctx, "s", 2)
	for i, tc := range cases {
		evs := next(t, subs[i], len(tc.want))
		if got, want := revisions(evs), fmt.Sprint(tc.want); got != want {
			t.Errorf("subscription from %#v = %s, want %s", tc.from, got, want)
		}
		for _, ev := range evs {
			if ev.StreamID != "s" {
				t.Errorf("subscription from %#v delivered an event of %s", tc.from, ev.StreamID)
			}
		}
	}
}

func TestAllSubscriptions(t *testing.T) {
	c, ctx := client(t)
	appendN(t, c, ctx, "a", 3) // positions 1..3
	cases := []struct {
		from esdb.AllPosition
		want []uint64
	}{
		{esdb.Start{}, []uint64{1, 2, 3, 4, 5}},
		{esdb.Position{Commit: 2, Prepare: 2}, []uint64{3, 4, 5}}, // exclusive
		{esdb.End{}, []uint64{4, 5}},
	}
	subs := make([]*esdb.Subscription, len(cases))
	for i, tc := range cases {
		sub, err := c.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: tc.from})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		subs[i] = sub
	}
	appendN(t, c, ctx, "b", 2)
	for i, tc := range cases {
		if got, want := positions(next(t, subs[i], len(tc.want))), fmt.Sprint(tc.want); got != want {
			t.Errorf("subscription from %#v = %s, want %s", tc.from, got, want)
		}
	}
}
