package kurrentdb_test

import (
	"testing"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
)

// KurrentDB writes system events of its own; the adapter hides them from
// ReadAll, Subscribe and Head. They are planted here in the backing store.
func TestSystemEventsAreSkipped(t *testing.T) {
	b := start(t, "esdb")
	ctx := testCtx(t)
	app := func(stream, typ string) eventstore.AppendResult {
		t.Helper()
		res, err := b.backing.Append(ctx, stream, eventstore.Any, []eventstore.EventData{eventstoretest.Event(typ, `{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	app("$stats-127.0.0.1", "$statsCollected")
	first := app("user-1", "user.created")
	app("user-1", "$metadata")
	app("$$user-1", "$metadata")
	second := app("user-2", "user.created")
	app("$projections-$all", "$ProjectionsInitialized")

	head, err := b.store.Head(ctx)
	if err != nil || head != second.Position {
		t.Fatalf("Head = %d, %v; want %d, the last user event", head, err, second.Position)
	}
	all, err := b.store.ReadAll(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Position != first.Position || all[1].Position != second.Position {
		t.Fatalf("ReadAll = %+v, want the two user events", all)
	}
	one, err := b.store.ReadAll(ctx, 0, 1)
	if err != nil || len(one) != 1 || one[0].Position != first.Position {
		t.Fatalf("ReadAll max 1 = %+v, %v; want the first user event", one, err)
	}
	rest, err := b.store.ReadAll(ctx, first.Position, 1)
	if err != nil || len(rest) != 1 || rest[0].Position != second.Position {
		t.Fatalf("ReadAll after the first = %+v, %v; want the second user event", rest, err)
	}
	var got []eventstore.Position
	stop := errorString("done")
	err = b.store.Subscribe(ctx, 0, func(ev eventstore.RecordedEvent) error {
		got = append(got, ev.Position)
		if ev.Position == second.Position {
			return stop
		}
		return nil
	})
	if err != stop || len(got) != 2 || got[0] != first.Position {
		t.Fatalf("Subscribe delivered %v (%v); want %d, %d", got, err, first.Position, second.Position)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
