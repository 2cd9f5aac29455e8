package domain

import (
	"fmt"
	"strings"
	"time"
)

// CategoryTemplateTerm is the stream category of template terms.
const CategoryTemplateTerm = "templateterm"

// TemplateTermStream is the stream of one template term of a program.
func TemplateTermStream(program, termID string) string {
	return CategoryTemplateTerm + "-" + program + "-" + termID
}

// Template term event type names (stream templateterm-<program>-<id>).
const (
	TypeTemplateTermCreated  = "template_term.created"
	TypeTemplateTermUpdated  = "template_term.updated"
	TypeTemplateTermArchived = "template_term.archived"
)

// Limits of a template term's (and a group's) texts.
const (
	maxNameLen        = 200
	maxDescriptionLen = 5000
)

// TemplateTermCreated: a named set of payout terms was created.
type TemplateTermCreated struct {
	TemplateTermID string    `json:"template_term_id"`
	ProgramID      string    `json:"program_id"`
	Name           string    `json:"name"`
	Description    string    `json:"description,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// TemplateTermUpdated: a template term was renamed or re-described. It
// carries the whole new name and description; Changed names what differs.
type TemplateTermUpdated struct {
	TemplateTermID string    `json:"template_term_id"`
	ProgramID      string    `json:"program_id"`
	Changed        []string  `json:"changed"`
	Name           string    `json:"name"`
	Description    string    `json:"description,omitempty"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// TemplateTermArchived: a template term was archived. No new contract may
// use it; the open contracts on it move to archived, each by its own
// partner.contract_archived event (a process, see TemplateTermArchived).
type TemplateTermArchived struct {
	TemplateTermID string    `json:"template_term_id"`
	ProgramID      string    `json:"program_id"`
	ArchivedAt     time.Time `json:"archived_at"`
}

func (TemplateTermCreated) EventType() string  { return TypeTemplateTermCreated }
func (TemplateTermUpdated) EventType() string  { return TypeTemplateTermUpdated }
func (TemplateTermArchived) EventType() string { return TypeTemplateTermArchived }

// TemplateTerm is the aggregate of one template term. An archived term
// stays readable but is never used again: it cannot be changed, nor
// proposed, countered or switched to.
type TemplateTerm struct {
	id, program       string
	name, description string
	createdAt         time.Time
	updatedAt         time.Time
	archivedAt        *time.Time
}

// TemplateTermState is a read-only copy of a template term.
type TemplateTermState struct {
	ID          string     `json:"id"`
	ProgramID   string     `json:"program_id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Archived    bool       `json:"archived"`
	ArchivedAt  *time.Time `json:"archived_at"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Exists reports whether the term was created.
func (t *TemplateTerm) Exists() bool { return t.id != "" }

// Archived reports whether the term was archived.
func (t *TemplateTerm) Archived() bool { return t.archivedAt != nil }

// State returns a copy of the term's state.
func (t *TemplateTerm) State() TemplateTermState {
	s := TemplateTermState{ID: t.id, ProgramID: t.program, Name: t.name, Description: t.description,
		Archived: t.archivedAt != nil, CreatedAt: t.createdAt, UpdatedAt: t.updatedAt}
	if t.archivedAt != nil {
		at := *t.archivedAt
		s.ArchivedAt = &at
	}
	return s
}

// Apply folds one event into the term.
func (t *TemplateTerm) Apply(ev Event) {
	switch e := ev.(type) {
	case TemplateTermCreated:
		t.id, t.program, t.name, t.description = e.TemplateTermID, e.ProgramID, e.Name, e.Description
		t.createdAt, t.updatedAt = e.CreatedAt, e.CreatedAt
	case TemplateTermUpdated:
		t.name, t.description, t.updatedAt = e.Name, e.Description, e.UpdatedAt
	case TemplateTermArchived:
		t.archivedAt, t.updatedAt = timePtr(e.ArchivedAt), e.ArchivedAt
	}
}

// NewTemplateTerm is the input of creating a template term.
type NewTemplateTerm struct {
	ProgramID   string
	ID          string
	Name        string
	Description string
}

// Create decides the creation of a template term. The name is trimmed and
// required; names need not be unique.
func (t *TemplateTerm) Create(in NewTemplateTerm, now time.Time) ([]Event, error) {
	var pr problems
	if !ValidEntityID(in.ID) {
		pr.add("id", EntityIDRule)
	}
	name := pr.name(in.Name, true)
	pr.description(in.Description)
	if err := pr.err(); err != nil {
		return nil, err
	}
	if t.Exists() {
		return nil, fmt.Errorf("template term %s: %w", in.ID, ErrAlreadyExists)
	}
	return []Event{TemplateTermCreated{TemplateTermID: in.ID, ProgramID: in.ProgramID, Name: name,
		Description: in.Description, CreatedAt: now.UTC()}}, nil
}

// TemplateTermPatch changes a template term; nil fields stay as they are.
type TemplateTermPatch struct {
	Name        *string
	Description *string
}

// Update decides a change of name and/or description. A patch that changes
// nothing yields no event; an archived term cannot be changed (conflict).
func (t *TemplateTerm) Update(patch TemplateTermPatch, now time.Time) ([]Event, error) {
	if !t.Exists() {
		return nil, fmt.Errorf("template term: %w", ErrNotFound)
	}
	var pr problems
	name, desc := t.name, t.description
	if patch.Name != nil {
		name = pr.name(*patch.Name, true)
	}
	if patch.Description != nil {
		desc = *patch.Description
		pr.description(desc)
	}
	if patch.Name == nil && patch.Description == nil {
		pr.add("body", "nothing to change: give name and/or description")
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	if t.Archived() {
		return nil, fmt.Errorf("template term %s is archived and cannot be changed: %w", t.id, ErrConflict)
	}
	var changed []string
	if name != t.name {
		changed = append(changed, "name")
	}
	if desc != t.description {
		changed = append(changed, "description")
	}
	if len(changed) == 0 {
		return nil, nil
	}
	return []Event{TemplateTermUpdated{TemplateTermID: t.id, ProgramID: t.program, Changed: changed,
		Name: name, Description: desc, UpdatedAt: now.UTC()}}, nil
}

// Archive decides archiving the term. Archiving an archived term yields no
// event, so a caller may repeat it (to re-run the archival of contracts).
func (t *TemplateTerm) Archive(now time.Time) ([]Event, error) {
	if !t.Exists() {
		return nil, fmt.Errorf("template term: %w", ErrNotFound)
	}
	if t.Archived() {
		return nil, nil
	}
	return []Event{TemplateTermArchived{TemplateTermID: t.id, ProgramID: t.program, ArchivedAt: now.UTC()}}, nil
}

// Usable checks that a contract may use the term: it exists and is not
// archived. It returns a ValidationError on template_term_id otherwise.
func (t *TemplateTerm) Usable(id string) error {
	var pr problems
	switch {
	case !t.Exists():
		pr.add("template_term_id", "no template term %s in this program", id)
	case t.Archived():
		pr.add("template_term_id", "template term %s is archived", id)
	}
	return pr.err()
}

// name trims and checks a display name.
func (pr *problems) name(s string, required bool) string {
	s = strings.TrimSpace(s)
	if s == "" && !required {
		return s
	}
	pr.text("name", s, maxNameLen, required)
	return s
}

func (pr *problems) description(s string) {
	pr.text("description", s, maxDescriptionLen, false)
}
