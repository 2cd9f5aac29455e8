package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

func setup(t *testing.T) (*commands.Commands, eventstore.Store) {
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return commands.New(commands.Deps{Store: s}), s
}

// Concurrent commands on one partner never lose an update: each lost
// version race is retried on the newer state.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	cmds, store := setup(t)
	ctx := context.Background()
	_, _, err := cmds.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: "acme", PartnerID: "p1",
		Profile: domain.Profile{Name: "A", RelationshipType: "direct"}}, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			field := fmt.Sprintf(`{"custom_fields":{"w%d":"x"}}`, w)
			var p domain.Patch
			_ = json.Unmarshal([]byte(field), &p)
			// Each writer sets its own custom field map: the last write
			// wins the whole map, but every write must be appended.
			if _, _, err := cmds.UpdatePartner.Handle(ctx, "acme", "p1", p, commands.Meta{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	evs, _ := store.ReadStream(ctx, domain.PartnerStream("acme", "p1"), 0, eventstore.Forwards, 100)
	if len(evs) != 1+writers {
		t.Fatalf("stream has %d events, want %d: every concurrent update appended once", len(evs), 1+writers)
	}
	var md commands.EventMeta
	_ = json.Unmarshal(evs[1].Metadata, &md)
	if md.Schema != domain.SchemaVersion || md.Program != "acme" {
		t.Fatalf("metadata = %+v", md)
	}
}

func TestIfMatch(t *testing.T) {
	cmds, _ := setup(t)
	ctx := context.Background()
	res, _, err := cmds.CreatePartner.Handle(ctx, domain.NewPartner{ProgramID: "acme", PartnerID: "p1",
		Profile: domain.Profile{Name: "A", RelationshipType: "direct"}}, commands.Meta{Actor: "a", CorrelationID: "c", IdempotencyKey: "i"})
	if err != nil || res.Version != 1 {
		t.Fatalf("create = %+v, %v", res, err)
	}
	stale := uint64(0)
	_, _, err = cmds.UpdatePartner.Handle(ctx, "acme", "p1", domain.Patch{"name": json.RawMessage(`"B"`)}, commands.Meta{IfMatch: &stale})
	if !errors.Is(err, commands.ErrStale) {
		t.Fatalf("stale If-Match: %v", err)
	}
	cur := uint64(1)
	res, st, err := cmds.UpdatePartner.Handle(ctx, "acme", "p1", domain.Patch{"name": json.RawMessage(`"B"`)}, commands.Meta{IfMatch: &cur})
	if err != nil || res.Version != 2 || st.Profile.Name != "B" {
		t.Fatalf("update = %+v %+v, %v", res, st, err)
	}
	// A no-op answers the current version and position and appends nothing.
	res2, _, err := cmds.UpdatePartner.Handle(ctx, "acme", "p1", domain.Patch{"name": json.RawMessage(`"B"`)}, commands.Meta{})
	if err != nil || res2.Version != 2 || res2.Appended != 0 || res2.Position != res.Position {
		t.Fatalf("no-op update = %+v, %v; want version 2 at position %d", res2, err, res.Position)
	}
}

// readCounter counts the stream reads a command makes.
type readCounter struct {
	eventstore.Store
	reads int
}

func (r *readCounter) ReadStream(ctx context.Context, stream string, from uint64, dir eventstore.Direction, max int) ([]eventstore.RecordedEvent, error) {
	r.reads++
	return r.Store.ReadStream(ctx, stream, from, dir, max)
}

// A create appends without reading its stream first; a second create of
// the same partner still reads it, finds the partner and appends nothing.
func TestCreateAppendsWithoutReadingItsStream(t *testing.T) {
	_, store := setup(t)
	rc := &readCounter{Store: store}
	cmds := commands.New(commands.Deps{Store: rc})
	ctx := context.Background()
	in := domain.NewPartner{ProgramID: "acme", PartnerID: "p1", Profile: domain.Profile{Name: "A", RelationshipType: "direct"}}
	res, st, err := cmds.CreatePartner.Handle(ctx, in, commands.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if rc.reads != 0 {
		t.Fatalf("a create read its stream %d times", rc.reads)
	}
	if res.Version != 1 || res.Appended != 1 || st.PartnerID != "p1" || st.Profile.Name != "A" {
		t.Fatalf("create answered %+v, state %+v", res, st)
	}
	head, _ := store.Head(ctx)
	if _, _, err := cmds.CreatePartner.Handle(ctx, in, commands.Meta{}); !errors.Is(err, domain.ErrAlreadyExists) {
		t.Fatalf("second create: %v, want ErrAlreadyExists", err)
	}
	if h, _ := store.Head(ctx); h != head {
		t.Fatalf("the second create appended: head %d → %d", head, h)
	}
	if rc.reads == 0 {
		t.Fatal("the second create never read the stream it found taken")
	}
	// Invalid input is refused as before, with nothing appended.
	bad := in
	bad.PartnerID = "p2"
	bad.Profile.RelationshipType = "nonsense"
	var ve *domain.ValidationError
	if _, _, err := cmds.CreatePartner.Handle(ctx, bad, commands.Meta{}); !errors.As(err, &ve) {
		t.Fatalf("invalid create: %v, want a validation error", err)
	}
	if h, _ := store.Head(ctx); h != head {
		t.Fatalf("the invalid create appended: head %d → %d", head, h)
	}
}
