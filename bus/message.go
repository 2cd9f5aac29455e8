// Package bus is the Watermill seam between the relay, the projections and
// downstream systems: topic names, the CloudEvents mapping of events to
// messages, and the choice of Pub/Sub (in-process Go channel or Kafka).
package bus

import (
	"fmt"
	"strconv"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/eventstore"
)

// Metadata keys of every message: the CloudEvents Kafka binary binding
// (ce_*) plus partnerd's own.
const (
	MetaSpecVersion = "ce_specversion"
	MetaID          = "ce_id"
	MetaType        = "ce_type"
	MetaSource      = "ce_source"
	MetaSubject     = "ce_subject"
	MetaTime        = "ce_time"
	MetaContentType = "content-type"
	MetaPosition    = "partnerd_position"
	MetaVersion     = "partnerd_version"
	MetaProgram     = "partnerd_program"
	MetaActor       = "partnerd_actor"
	MetaCorrelation = "partnerd_correlation_id"
	MetaCausation   = "partnerd_causation_id"
	MetaSchema      = "partnerd_schema"
	MetaOccurredAt  = "partnerd_occurred_at"
)

// Topic returns the bus topic of a stream category ("partner" → "partnerd.partners").
func Topic(category string) string {
	switch category {
	case "partner":
		return "partnerd.partners"
	case "program":
		return "partnerd.programs"
	case "group":
		return "partnerd.groups"
	case "templateterm", "template_term":
		return "partnerd.template-terms"
	case "segment":
		return "partnerd.segments"
	case "activity", "activities":
		return "partnerd.activities"
	case "connection", "credential":
		return "partnerd.connections"
	}
	return "partnerd." + category
}

// Topics lists every topic partnerd publishes to.
func Topics() []string {
	return []string{"partnerd.partners", "partnerd.groups", "partnerd.template-terms", "partnerd.segments",
		"partnerd.activities", "partnerd.connections", "partnerd.programs"}
}

type storedMeta struct {
	Schema        int    `json:"schema"`
	Program       string `json:"program"`
	Actor         string `json:"actor"`
	CorrelationID string `json:"correlation_id"`
	CausationID   string `json:"causation_id"`
	OccurredAt    string `json:"occurred_at"`
}

// metaOf reads what the bus needs from an event's stored metadata; a
// missing schema version means 1.
func metaOf(ev eventstore.RecordedEvent) storedMeta {
	var sm storedMeta
	_ = gojson.Unmarshal(ev.Metadata, &sm) // read for every event: the faster decoder
	if sm.Schema == 0 {
		sm.Schema = 1
	}
	return sm
}

// NewMessage maps a stored event to a Watermill message. The message UUID
// and ce_id are the event ID, so every re-publish carries the same ID.
// partnerd_version is the resource version after the event (stream version + 1).
func NewMessage(ev eventstore.RecordedEvent) *message.Message {
	sm := metaOf(ev)
	msg := message.NewMessage(ev.ID, ev.Data)
	m := msg.Metadata
	m.Set(MetaSpecVersion, "1.0")
	m.Set(MetaID, ev.ID)
	m.Set(MetaType, ev.Type)
	m.Set(MetaSource, "partnerd/"+sm.Program)
	m.Set(MetaSubject, ev.StreamID)
	m.Set(MetaTime, ev.RecordedAt.UTC().Format(time.RFC3339Nano))
	m.Set(MetaContentType, "application/json")
	m.Set(MetaPosition, ev.Position.String())
	m.Set(MetaVersion, strconv.FormatUint(ev.Version+1, 10))
	m.Set(MetaProgram, sm.Program)
	m.Set(MetaSchema, strconv.Itoa(sm.Schema))
	if sm.Actor != "" {
		m.Set(MetaActor, sm.Actor)
	}
	if sm.CorrelationID != "" {
		m.Set(MetaCorrelation, sm.CorrelationID)
	}
	if sm.CausationID != "" {
		m.Set(MetaCausation, sm.CausationID)
	}
	if sm.OccurredAt != "" {
		m.Set(MetaOccurredAt, sm.OccurredAt)
	}
	return msg
}

// Envelope is an event as a consumer sees it on the bus.
type Envelope struct {
	ID         string
	Type       string
	Stream     string
	Program    string
	Version    uint64 // resource version after this event (stream version + 1)
	Position   eventstore.Position
	Schema     int
	RecordedAt time.Time
	Data       []byte
}

// ParseMessage reads an envelope back from a message.
func ParseMessage(msg *message.Message) (Envelope, error) {
	m := msg.Metadata
	e := Envelope{ID: m.Get(MetaID), Type: m.Get(MetaType), Stream: m.Get(MetaSubject), Program: m.Get(MetaProgram), Data: msg.Payload}
	var err error
	if e.Version, err = strconv.ParseUint(m.Get(MetaVersion), 10, 64); err != nil || e.Version == 0 {
		return e, fmt.Errorf("message %s: bad %s %q", msg.UUID, MetaVersion, m.Get(MetaVersion))
	}
	if e.Position, err = eventstore.ParsePosition(m.Get(MetaPosition)); err != nil {
		return e, fmt.Errorf("message %s: %w", msg.UUID, err)
	}
	if e.Schema, err = strconv.Atoi(m.Get(MetaSchema)); err != nil {
		e.Schema = 1
	}
	if e.RecordedAt, err = time.Parse(time.RFC3339Nano, m.Get(MetaTime)); err != nil {
		return e, fmt.Errorf("message %s: bad %s: %w", msg.UUID, MetaTime, err)
	}
	if e.ID == "" || e.Type == "" || e.Stream == "" {
		return e, fmt.Errorf("message %s: missing CloudEvents id, type or subject", msg.UUID)
	}
	return e, nil
}

// EnvelopeOf is what ParseMessage(NewMessage(ev)) returns, without the
// message: rebuilds read the log directly.
func EnvelopeOf(ev eventstore.RecordedEvent) Envelope {
	sm := metaOf(ev)
	return Envelope{ID: ev.ID, Type: ev.Type, Stream: ev.StreamID, Program: sm.Program, Version: ev.Version + 1,
		Position: ev.Position, Schema: sm.Schema, RecordedAt: ev.RecordedAt.UTC(), Data: ev.Data}
}
