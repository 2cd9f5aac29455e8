package kurrentdb_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
)

// Snapshots live in a snapshot stream beside the partner stream; its first
// write asks KurrentDB to keep only the latest one ($maxCount 1), and the
// port cannot append to such a stream.
func TestSnapshotStreamBesideTheStream(t *testing.T) {
	b := start(t, "esdb")
	ctx := testCtx(t)
	const stream = "partner-acme-long"
	if _, err := b.store.Append(ctx, stream, eventstore.NoStream, []eventstore.EventData{eventstoretest.Event("partner.created", `{}`)}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{`{"v":1}`, `{"v":2}`, `{"v":3}`} {
		if err := b.store.WriteSnapshot(ctx, stream, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	// What the server received (the in-process server keeps every event;
	// KurrentDB would drop the older snapshots at its next scavenge).
	snaps, err := b.backing.ReadStream(ctx, "snapshot-"+stream, 0, eventstore.Forwards, 10)
	if err != nil || len(snaps) != 3 || snaps[2].Type != "partnerd.snapshot" || string(snaps[2].Data) != `{"v":3}` {
		t.Fatalf("snapshot stream = %+v, %v; want the 3 snapshots", snaps, err)
	}
	meta, err := b.backing.ReadStream(ctx, "$$snapshot-"+stream, math.MaxUint64, eventstore.Backwards, 10)
	if err != nil || len(meta) != 1 || meta[0].Type != "$metadata" {
		t.Fatalf("metadata stream = %+v, %v; want one $metadata event (set on the first write only)", meta, err)
	}
	var m map[string]any
	if err := json.Unmarshal(meta[0].Data, &m); err != nil || m["$maxCount"] != 1.0 {
		t.Fatalf("snapshot stream metadata = %s, %v; want $maxCount 1", meta[0].Data, err)
	}
	if got, err := b.store.ReadSnapshot(ctx, stream); err != nil || string(got) != `{"v":3}` {
		t.Fatalf("snapshot = %q, %v", got, err)
	}
	for _, name := range []string{"snapshot-" + stream, "$$snapshot-" + stream} {
		if _, err := b.store.Append(ctx, name, eventstore.Any, []eventstore.EventData{eventstoretest.Event("partnerd.snapshot", `{"v":9}`)}); err == nil {
			t.Fatalf("append to %s through the port succeeded", name)
		}
	}
	if got, _ := b.store.ReadSnapshot(ctx, stream); string(got) != `{"v":3}` {
		t.Fatalf("snapshot after refused appends = %q", got)
	}
}
