package domain

import (
	"encoding/json"
	"fmt"
)

// Every event type has a schema version, stored in its metadata
// ("schema"). A type starts at version 1; a change of its data's shape
// adds a version and one Upcaster from the previous one. Stored events are
// never rewritten: readers upcast old data step by step (v1 → v2 → … →
// current) before decoding it. See EVENTS.md, "Adding an event version".

// Upcaster turns one event type's data from schema version From into
// version From+1. It works on JSON so it needs no Go type of the old shape.
type Upcaster struct {
	Type string
	From int
	Up   func(data []byte) ([]byte, error)
}

// Schemas knows each event type's current schema version and the chain
// of upcasters leading there.
type Schemas struct {
	steps map[string][]func([]byte) ([]byte, error) // steps[t][i]: version i+1 → i+2
}

// NewSchemas builds the chains. Each type's upcasters must start at
// version 1 and leave no gap and no duplicate.
func NewSchemas(ups ...Upcaster) (Schemas, error) {
	s := Schemas{steps: map[string][]func([]byte) ([]byte, error){}}
	for _, u := range ups {
		if u.Up == nil || u.Type == "" {
			return Schemas{}, fmt.Errorf("upcaster of %q from %d: no type or function", u.Type, u.From)
		}
		if want := len(s.steps[u.Type]) + 1; u.From != want {
			return Schemas{}, fmt.Errorf("upcaster of %s from version %d: the next one must start at version %d", u.Type, u.From, want)
		}
		s.steps[u.Type] = append(s.steps[u.Type], u.Up)
	}
	return s, nil
}

// Current is the schema version this build writes for the type.
func (s Schemas) Current(typ string) int { return 1 + len(s.steps[typ]) }

// Upcast turns data of the given version into the type's current shape.
// A version newer than this build knows is refused: an older binary must
// not misread what a newer one wrote.
func (s Schemas) Upcast(typ string, schema int, data []byte) ([]byte, error) {
	cur := s.Current(typ)
	switch {
	case schema < 1:
		return nil, fmt.Errorf("decode %s: schema version %d does not exist", typ, schema)
	case schema > cur:
		return nil, fmt.Errorf("decode %s: schema version %d is newer than this build knows (%d)", typ, schema, cur)
	}
	for v := schema; v < cur; v++ {
		out, err := s.steps[typ][v-1](data)
		if err != nil {
			return nil, fmt.Errorf("upcast %s from version %d: %w", typ, v, err)
		}
		if !json.Valid(out) {
			return nil, fmt.Errorf("upcast %s from version %d: the result is not JSON", typ, v)
		}
		data = out
	}
	return data, nil
}

// SchemaOfMetadata reads the schema version from stored event metadata
// (absent means 1).
func SchemaOfMetadata(typ string, metadata []byte) (int, error) {
	var m struct {
		Schema int `json:"schema"`
	}
	if len(metadata) > 0 {
		if err := json.Unmarshal(metadata, &m); err != nil {
			return 0, fmt.Errorf("decode %s: metadata: %w", typ, err)
		}
	}
	if m.Schema == 0 {
		m.Schema = 1
	}
	return m.Schema, nil
}

// upcasters lists the schema changes of partnerd's event types, oldest
// first per type. Every type is still at version 1.
func upcasters() []Upcaster { return nil }

// schemas is built once from upcasters and never changed.
var schemas = func() Schemas {
	s, err := NewSchemas(upcasters()...)
	if err != nil {
		panic(err) // a broken chain is a programming error caught by any test
	}
	return s
}()

// SchemaOf is the schema version this build writes for an event type.
func SchemaOf(typ string) int { return schemas.Current(typ) }
