package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
)

// Snapshots stores partner snapshots beside the log: the event store's
// eventstore.Snapshotter capability, which both adapters implement (the
// embedded store under its own keys, KurrentDB in a snapshot stream beside
// the partner's). They are a cache, never authoritative: a snapshot that
// does not match the stream (its last event's ID), or was taken by a build
// that folds differently (snapshotSchema), is ignored, and a lost one only
// costs a full fold.
type Snapshots interface {
	// ReadSnapshot returns the stored snapshot of a stream, or nil.
	ReadSnapshot(ctx context.Context, stream string) ([]byte, error)
	// WriteSnapshot replaces the stream's snapshot.
	WriteSnapshot(ctx context.Context, stream string, snapshot []byte) error
}

var _ Snapshots = eventstore.Snapshotter(nil)

// DefaultSnapshotEvery: a partner is snapshotted when a load folded at
// least this many events after its last snapshot.
const DefaultSnapshotEvery = 500

type storedSnapshot struct {
	Schema  string                 `json:"schema"`
	Version uint64                 `json:"version"`  // resource version (events folded)
	EventID string                 `json:"event_id"` // ID of the event at Version, checked against the log
	Partner domain.PartnerSnapshot `json:"partner"`
}

// snapshotSchema fingerprints everything a snapshot's meaning depends on:
// the fold's version, the Go shape of the snapshot, the partner event
// types' schema versions. Any change discards older snapshots.
var snapshotSchema = func() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fold %d\n", domain.PartnerSnapshotVersion)
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			if t.Kind() == reflect.Map {
				walk(t.Key())
			}
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		fmt.Fprintf(&b, "%s{", t.String())
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(&b, "%s %s %q;", f.Name, f.Type.String(), f.Tag)
			walk(f.Type)
		}
		b.WriteString("}\n")
	}
	walk(reflect.TypeFor[domain.PartnerSnapshot]())
	for _, typ := range domain.EventTypes() {
		if strings.HasPrefix(typ, domain.CategoryPartner+".") {
			fmt.Fprintf(&b, "%s %d\n", typ, domain.SchemaOf(typ))
		}
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}()

// LoadPartner folds a partner's stream like Load, starting from its
// snapshot when a valid one exists, and stores a new snapshot when it
// folded every or more events past the last one (every <= 0: the default).
// Snapshot failures only cost speed: the stream is folded in full.
func LoadPartner(ctx context.Context, store EventStore, snaps Snapshots, every int, stream string) (*domain.Partner, int64, eventstore.Position, error) {
	if every <= 0 {
		every = DefaultSnapshotEvery
	}
	var p domain.Partner
	var from, base uint64 // base: the resource version the fold starts at
	var checkID string
	// A snapshot is only worth its round trip for a long stream: one
	// shorter than every has none this configuration took, and one shorter
	// than DefaultSnapshotEvery folds quickly anyway. Whether the stream
	// reaches that length is one forward read of one event (a local seek
	// for the embedded store, cheaper there than finding the last event),
	// and spares a create, whose stream does not exist yet, and every short
	// stream the snapshot store entirely.
	probe, err := store.ReadStream(ctx, stream, uint64(min(every, DefaultSnapshotEvery))-1, eventstore.Forwards, 1)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("load %s: %w", stream, err)
	}
	if len(probe) == 0 {
		return Load[domain.Partner](ctx, store, stream)
	}
	if raw, err := snaps.ReadSnapshot(ctx, stream); err == nil && raw != nil {
		var s storedSnapshot
		if json.Unmarshal(raw, &s) == nil && s.Schema == snapshotSchema && s.Version > 0 {
			p = domain.RestoreSnapshot(s.Partner)
			base, from, checkID = s.Version, s.Version-1, s.EventID // re-read its last event to check it
		}
	}
	version, pos, lastID := int64(base)-1, eventstore.Position(0), ""
	for {
		evs, err := store.ReadStream(ctx, stream, from, eventstore.Forwards, 512)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("load %s: %w", stream, err)
		}
		read := len(evs)
		if checkID != "" {
			if len(evs) == 0 || evs[0].ID != checkID {
				// The log is not the one the snapshot was taken of: fold it all.
				return loadFull(ctx, store, snaps, stream)
			}
			pos, lastID = evs[0].Position, evs[0].ID
			evs, checkID = evs[1:], ""
			from++
		}
		for _, re := range evs {
			ev, err := DecodeRecorded(re)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("load %s: %w", stream, err)
			}
			p.Apply(ev)
			version, pos, lastID = int64(re.Version), re.Position, re.ID
		}
		from += uint64(len(evs))
		if read < 512 {
			break
		}
	}
	if version >= 0 && uint64(version+1)-base >= uint64(every) {
		raw, err := json.Marshal(storedSnapshot{Schema: snapshotSchema, Version: uint64(version + 1), EventID: lastID, Partner: p.Snapshot()})
		if err == nil {
			_ = snaps.WriteSnapshot(ctx, stream, raw) // a cache: failing to write one changes nothing
		}
	}
	return &p, version, pos, nil
}

func loadFull(ctx context.Context, store EventStore, snaps Snapshots, stream string) (*domain.Partner, int64, eventstore.Position, error) {
	p, version, pos, err := Load[domain.Partner](ctx, store, stream)
	if err == nil && version >= 0 {
		// Replace the stale snapshot by one of this log.
		last, rerr := store.ReadStream(ctx, stream, uint64(version), eventstore.Forwards, 1)
		if rerr == nil && len(last) == 1 {
			if raw, merr := json.Marshal(storedSnapshot{Schema: snapshotSchema, Version: uint64(version + 1), EventID: last[0].ID, Partner: p.Snapshot()}); merr == nil {
				_ = snaps.WriteSnapshot(ctx, stream, raw)
			}
		}
	}
	return p, version, pos, err
}
