package domain

import (
	"encoding/json"
	"fmt"
)

// Event is a fact that happened to an aggregate. Its type name is stable
// forever and never derived from the Go type name.
type Event interface {
	EventType() string
}

// SchemaVersion is the current schema version of every event type's data.
// An older version is upcast when read (see Upcast); stored events are never
// rewritten.
const SchemaVersion = 1

// DecodeEvent turns stored JSON of the given type and schema version into its
// event struct. Unknown types are an error: a reader must know every type it
// folds.
func DecodeEvent(typ string, schema int, data []byte) (Event, error) {
	ev := newEvent(typ)
	if ev == nil {
		return nil, fmt.Errorf("decode event: unknown type %q", typ)
	}
	data, err := Upcast(typ, schema, data)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return deref(ev), nil
}

// Upcast turns event data written at an older schema version into the
// current shape. Every type is at version 1 so far, so this only refuses
// versions from the future.
func Upcast(typ string, schema int, data []byte) ([]byte, error) {
	if schema > SchemaVersion {
		return nil, fmt.Errorf("decode %s: schema version %d is newer than this build knows (%d)", typ, schema, SchemaVersion)
	}
	return data, nil
}

// newEvent returns a pointer to a zero event of the named type, or nil.
func newEvent(typ string) Event {
	switch typ {
	case TypeProgramCreated:
		return &ProgramCreated{}
	case TypeProgramAPIKeyIssued:
		return &ProgramAPIKeyIssued{}
	case TypeProgramAPIKeyRevoked:
		return &ProgramAPIKeyRevoked{}
	case TypePartnerCreated:
		return &PartnerCreated{}
	case TypePartnerProfileUpdated:
		return &PartnerProfileUpdated{}
	}
	return nil
}

// EventTypes lists every event type this build knows, for documentation
// checks and consumers.
func EventTypes() []string {
	return []string{
		TypeProgramCreated, TypeProgramAPIKeyIssued, TypeProgramAPIKeyRevoked,
		TypePartnerCreated, TypePartnerProfileUpdated,
	}
}

func deref(ev Event) Event {
	switch e := ev.(type) {
	case *ProgramCreated:
		return *e
	case *ProgramAPIKeyIssued:
		return *e
	case *ProgramAPIKeyRevoked:
		return *e
	case *PartnerCreated:
		return *e
	case *PartnerProfileUpdated:
		return *e
	}
	return ev
}
