package domain

import (
	"fmt"
	"time"
)

// CategorySegment is the stream category of segments (topic partnerd.segments).
const CategorySegment = "segment"

// SegmentStream is the stream of one segment's definition.
func SegmentStream(program, segmentID string) string {
	return CategorySegment + "-" + program + "-" + segmentID
}

// SegmentMembersStream is the stream of one segment's membership events
// (entered/left), written only by the membership projection's outbox. It is
// apart from the definition stream so that commands and the projection
// never race for its expected version; '~' never occurs in an ID, so it
// cannot collide with another segment's stream.
func SegmentMembersStream(program, segmentID string) string {
	return SegmentStream(program, segmentID) + SegmentMembersSuffix
}

// SegmentMembersSuffix ends a segment's members stream.
const SegmentMembersSuffix = "~members"

// Segment event types.
const (
	TypeSegmentCreated           = "segment.created"
	TypeSegmentRenamed           = "segment.renamed"
	TypeSegmentConditionsChanged = "segment.conditions_changed"
	TypeSegmentDeleted           = "segment.deleted"
	TypeSegmentPartnerEntered    = "segment.partner_entered"
	TypeSegmentPartnerLeft       = "segment.partner_left"
)

// SegmentCreated: a segment was saved with its name and conditions.
type SegmentCreated struct {
	SegmentID  string     `json:"segment_id"`
	ProgramID  string     `json:"program_id"`
	Name       string     `json:"name"`
	Conditions Conditions `json:"conditions"`
	CreatedAt  time.Time  `json:"created_at"`
}

// SegmentRenamed: the segment got a new name.
type SegmentRenamed struct {
	SegmentID    string    `json:"segment_id"`
	ProgramID    string    `json:"program_id"`
	Name         string    `json:"name"`
	PreviousName string    `json:"previous_name"`
	RenamedAt    time.Time `json:"renamed_at"`
}

// SegmentConditionsChanged: the segment's conditions were replaced (whole).
type SegmentConditionsChanged struct {
	SegmentID  string     `json:"segment_id"`
	ProgramID  string     `json:"program_id"`
	Conditions Conditions `json:"conditions"`
	ChangedAt  time.Time  `json:"changed_at"`
}

// SegmentDeleted: the segment was deleted; its members leave it. Its ID is
// never used again.
type SegmentDeleted struct {
	SegmentID string    `json:"segment_id"`
	ProgramID string    `json:"program_id"`
	DeletedAt time.Time `json:"deleted_at"`
}

// SegmentMembershipChanged is the data of segment.partner_entered and
// segment.partner_left (stream SegmentMembersStream). Seq is the event's
// 1-based number in that stream; CausationEventID is the event that made
// the projection see the change; At is when that event was recorded.
type SegmentMembershipChanged struct {
	SegmentID        string    `json:"segment_id"`
	ProgramID        string    `json:"program_id"`
	PartnerID        string    `json:"partner_id"`
	Seq              uint64    `json:"seq"`
	CausationEventID string    `json:"causation_event_id"`
	At               time.Time `json:"at"`
}

// SegmentPartnerEntered: a partner started matching a segment.
type SegmentPartnerEntered SegmentMembershipChanged

// SegmentPartnerLeft: a partner stopped matching a segment (or it was deleted).
type SegmentPartnerLeft SegmentMembershipChanged

func (SegmentCreated) EventType() string           { return TypeSegmentCreated }
func (SegmentRenamed) EventType() string           { return TypeSegmentRenamed }
func (SegmentConditionsChanged) EventType() string { return TypeSegmentConditionsChanged }
func (SegmentDeleted) EventType() string           { return TypeSegmentDeleted }
func (SegmentPartnerEntered) EventType() string    { return TypeSegmentPartnerEntered }
func (SegmentPartnerLeft) EventType() string       { return TypeSegmentPartnerLeft }

// Segment is the aggregate of one segment's definition. Membership is a
// read model (projections), never stored here.
type Segment struct {
	id, program string
	name        string
	conditions  Conditions
	createdAt   time.Time
	updatedAt   time.Time
	deleted     bool
}

// SegmentState is a read-only copy of a segment.
type SegmentState struct {
	ID         string     `json:"id"`
	ProgramID  string     `json:"program_id"`
	Name       string     `json:"name"`
	Conditions Conditions `json:"conditions"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	Deleted    bool       `json:"deleted,omitempty"`
}

// Exists reports whether the segment was created (deleted or not).
func (s *Segment) Exists() bool { return s.id != "" }

// Live reports whether the segment exists and was not deleted.
func (s *Segment) Live() bool { return s.Exists() && !s.deleted }

// State returns a copy of the segment's state.
func (s *Segment) State() SegmentState {
	return SegmentState{ID: s.id, ProgramID: s.program, Name: s.name, Conditions: s.conditions,
		CreatedAt: s.createdAt, UpdatedAt: s.updatedAt, Deleted: s.deleted}
}

// Apply folds one event into the segment.
func (s *Segment) Apply(ev Event) {
	switch e := ev.(type) {
	case SegmentCreated:
		s.id, s.program, s.name, s.conditions = e.SegmentID, e.ProgramID, e.Name, e.Conditions
		s.createdAt, s.updatedAt = e.CreatedAt, e.CreatedAt
	case SegmentRenamed:
		s.name, s.updatedAt = e.Name, e.RenamedAt
	case SegmentConditionsChanged:
		s.conditions, s.updatedAt = e.Conditions, e.ChangedAt
	case SegmentDeleted:
		s.deleted, s.updatedAt = true, e.DeletedAt
	}
}

// NewSegment is the input of creating a segment.
type NewSegment struct {
	ProgramID  string
	ID         string
	Name       string
	Conditions *Conditions // nil: missing
}

func validConditions(pr *problems, c *Conditions) {
	if c == nil {
		pr.add("conditions", "is required")
		return
	}
	c.validate(pr, "conditions")
}

// Create decides the creation of a segment. The ID of a deleted segment is
// taken (ErrAlreadyExists).
func (s *Segment) Create(in NewSegment, now time.Time) ([]Event, error) {
	var pr problems
	if !ValidEntityID(in.ID) {
		pr.add("id", EntityIDRule)
	}
	name := pr.name(in.Name, true)
	validConditions(&pr, in.Conditions)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if s.Exists() {
		return nil, fmt.Errorf("segment %s: %w", in.ID, ErrAlreadyExists)
	}
	return []Event{SegmentCreated{SegmentID: in.ID, ProgramID: in.ProgramID, Name: name, Conditions: *in.Conditions, CreatedAt: now.UTC()}}, nil
}

// Update decides replacing the name and the conditions (PUT): a rename
// and/or a conditions change; what is the same yields no event.
func (s *Segment) Update(name string, c *Conditions, now time.Time) ([]Event, error) {
	if !s.Live() {
		return nil, fmt.Errorf("segment: %w", ErrNotFound)
	}
	var pr problems
	name = pr.name(name, true)
	validConditions(&pr, c)
	if err := pr.err(); err != nil {
		return nil, err
	}
	var evs []Event
	if name != s.name {
		evs = append(evs, SegmentRenamed{SegmentID: s.id, ProgramID: s.program, Name: name, PreviousName: s.name, RenamedAt: now.UTC()})
	}
	if !c.Equal(s.conditions) {
		evs = append(evs, SegmentConditionsChanged{SegmentID: s.id, ProgramID: s.program, Conditions: *c, ChangedAt: now.UTC()})
	}
	return evs, nil
}

// Delete decides deleting the segment; deleting it again yields no event.
func (s *Segment) Delete(now time.Time) ([]Event, error) {
	if !s.Exists() {
		return nil, fmt.Errorf("segment: %w", ErrNotFound)
	}
	if s.deleted {
		return nil, nil
	}
	return []Event{SegmentDeleted{SegmentID: s.id, ProgramID: s.program, DeletedAt: now.UTC()}}, nil
}
