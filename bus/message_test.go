package bus_test

import (
	"testing"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
)

// The envelope carries who, why and when-it-took-effect from the stored metadata,
// and leaves out what the metadata does not say.
func TestNewMessageHeadersFromMetadata(t *testing.T) {
	m := bus.NewMessage(eventstore.RecordedEvent{ID: "e-1", StreamID: "partner-a-1", Type: "partner.updated", Version: 1,
		Position: 9, Data: []byte(`{}`), Metadata: []byte(`{"schema":2,"program":"a","actor":"cli","correlation_id":"r-1",` +
			`"occurred_at":"2026-12-04T21:11:50.989586774Z"}`)})
	for k, want := range map[string]string{bus.MetaProgram: "a", bus.MetaActor: "cli", bus.MetaCorrelation: "r-1",
		bus.MetaSchema: "2", bus.MetaVersion: "2", bus.MetaPosition: "9", bus.MetaOccurredAt: "2026-12-04T21:11:50.989586774Z"} {
		if got := m.Metadata.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	old := bus.NewMessage(eventstore.RecordedEvent{ID: "e-2", StreamID: "partner-a-1", Type: "partner.created",
		Data: []byte(`{}`), Metadata: []byte(`{"program":"a"}`)})
	for _, k := range []string{bus.MetaOccurredAt, bus.MetaActor, bus.MetaCausation} {
		if _, set := old.Metadata[k]; set {
			t.Errorf("%s set to %q from metadata without it", k, old.Metadata[k])
		}
	}
	if got := old.Metadata.Get(bus.MetaSchema); got != "1" {
		t.Errorf("schema of metadata without one = %q, want 1", got)
	}
}
